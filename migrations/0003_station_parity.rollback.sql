-- Drops what 0003 created (recorded in identity_loader.station_objects) and the
-- triggers it put on the station tables that 0001 created.
do $$
declare
    tbl text;
    trg text;
    ours constant text[] := array(
        select object_name from identity_loader.station_objects where object_kind = 'table');
begin
    foreach tbl in array array['library', 'artists', 'compilation_track_artist', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) and to_regclass('wxyc_schema.' || tbl) is not null then
            foreach trg in array array[
                tbl || '_watermark_touch', tbl || '_watermark_truncate',
                tbl || '_row_change_notify'] loop
                execute format('drop trigger if exists %I on wxyc_schema.%I', trg, tbl);
            end loop;
        end if;
    end loop;

    if 'wxyc_schema.flowsheet' = any(ours) then
        drop table if exists wxyc_schema.flowsheet;
    end if;
    if 'wxyc_schema.library_watermark' = any(ours) then
        drop table if exists wxyc_schema.library_watermark;
    end if;
    if exists (select 1 from identity_loader.station_objects
               where object_name = 'wxyc_schema.flowsheet_entry_type') then
        drop type if exists wxyc_schema.flowsheet_entry_type;
    end if;
    if exists (select 1 from identity_loader.station_objects
               where object_name = 'wxyc_schema.touch_library_watermark()') then
        drop function if exists wxyc_schema.touch_library_watermark();
    end if;
    if exists (select 1 from identity_loader.station_objects
               where object_name = 'wxyc_schema.notify_row_change()') then
        drop function if exists wxyc_schema.notify_row_change();
    end if;
    delete from identity_loader.station_objects
    where object_name in (
        'wxyc_schema.flowsheet', 'wxyc_schema.library_watermark',
        'wxyc_schema.flowsheet_entry_type', 'wxyc_schema.touch_library_watermark()',
        'wxyc_schema.notify_row_change()');
end
$$;
