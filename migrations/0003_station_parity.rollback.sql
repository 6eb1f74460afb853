-- Drops what 0003 created (recorded in identity_loader.station_objects) and the
-- triggers it put on the station tables that 0001 created.
do $$
declare
    tbl text;
    trg text;
    obj text;
    ours constant text[] := array(
        select object_name from identity_loader.station_objects where object_kind = 'table');
begin
    foreach tbl in array array['library', 'artists', 'compilation_track_artist', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) and to_regclass('wxyc_schema.' || tbl) is not null then
            foreach trg in array array[
                'touch_library_watermark', 'touch_library_watermark_from_' || tbl,
                'cdc_' || tbl, 'cascade_library_artist_name'] loop
                execute format('drop trigger if exists %I on wxyc_schema.%I', trg, tbl);
            end loop;
        end if;
    end loop;

    foreach obj in array array['wxyc_schema.flowsheet', 'wxyc_schema.flowsheet_watermark',
                                'wxyc_schema.library_watermark'] loop
        if obj = any(ours) then
            execute format('drop table if exists %s', obj);
        end if;
    end loop;
    foreach obj in array array[
        'wxyc_schema.bump_flowsheet_updated_at()', 'wxyc_schema.touch_flowsheet_watermark()',
        'wxyc_schema.cascade_library_artist_name()', 'wxyc_schema.touch_library_watermark()',
        'public.cdc_notify()'] loop
        if exists (select 1 from identity_loader.station_objects
                   where object_kind = 'function' and object_name = obj) then
            execute format('drop function if exists %s', obj);
        end if;
    end loop;
    foreach obj in array array['wxyc_schema.flowsheet_entry_type',
                                'wxyc_schema.metadata_status_enum'] loop
        if exists (select 1 from identity_loader.station_objects
                   where object_kind = 'type' and object_name = obj) then
            execute format('drop type if exists %s', obj);
        end if;
    end loop;
    delete from identity_loader.station_objects
    where object_name in (
        'wxyc_schema.flowsheet', 'wxyc_schema.flowsheet_watermark',
        'wxyc_schema.library_watermark', 'wxyc_schema.flowsheet_entry_type',
        'wxyc_schema.metadata_status_enum', 'wxyc_schema.bump_flowsheet_updated_at()',
        'wxyc_schema.touch_flowsheet_watermark()', 'wxyc_schema.cascade_library_artist_name()',
        'wxyc_schema.touch_library_watermark()', 'public.cdc_notify()');
end
$$;
