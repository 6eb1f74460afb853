-- Drops only the station objects that 0001 created (recorded in
-- identity_loader.station_objects); a station's own tables are never touched.
do $$
declare
    obj record;
begin
    for obj in
        select object_kind, object_name
        from identity_loader.station_objects
        order by
            case object_kind when 'table' then 1 when 'function' then 2 else 3 end,
            case object_name
                when 'wxyc_schema.rotation' then 1
                when 'wxyc_schema.compilation_track_artist' then 2
                when 'wxyc_schema.library_identity_history' then 3
                when 'wxyc_schema.library_identity_source' then 4
                when 'wxyc_schema.library_identity' then 5
                when 'wxyc_schema.library' then 6
                else 7
            end
    loop
        if obj.object_kind = 'table' then
            execute format('drop table if exists %s', obj.object_name);
        elsif obj.object_kind = 'function' then
            execute format('drop function if exists %s', obj.object_name);
        else
            execute format('drop type if exists %s', obj.object_name);
        end if;
    end loop;
end
$$;

drop table identity_loader.station_objects;
