-- depends: 0005_merge_history
-- An earlier 0003 created wxyc_schema.notify_row_change() whenever no function of that
-- name existed, even in a station's own database, whose per-row change notification is
-- public.cdc_notify(). Where that function is unused (no trigger calls it) and this role
-- owns it, it is dropped and its record goes: a station's schema holds only what the
-- station created. Databases whose own station tables still use it keep it.
-- Guard: none required; drops one unused function this project created.

do $$
declare
    fn constant regprocedure := to_regprocedure('wxyc_schema.notify_row_change()');
begin
    if fn is null or not exists (
        select 1 from identity_loader.station_objects
        where object_kind = 'function' and object_name = 'wxyc_schema.notify_row_change()'
    ) then
        return;
    end if;
    if exists (select 1 from pg_trigger where tgfoid = fn) then
        return;
    end if;
    if not pg_has_role((select proowner from pg_proc where oid = fn), 'usage') then
        raise warning 'wxyc_schema.notify_row_change() is unused but owned by another role; '
            'its owner can drop it: drop function wxyc_schema.notify_row_change()';
        return;
    end if;
    drop function wxyc_schema.notify_row_change();
    delete from identity_loader.station_objects
    where object_kind = 'function' and object_name = 'wxyc_schema.notify_row_change()';
end
$$;
