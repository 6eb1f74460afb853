-- depends: 0002_loader_tables
-- What the station's database does around the tables this project writes, for the
-- station tables that 0001 created (standalone, demo and test databases): the
-- catalogue watermark and its statement-level triggers, the per-row change
-- notification, and the on-air log (flowsheet) that the rotation backfill reads.
-- A station's own tables already carry their triggers and are never touched.
-- Guard: none required; this creates empty objects and triggers and touches no data.

do $$
declare
    -- library's exported columns: an UPDATE naming any of them advances the watermark.
    library_watched constant text[] := array[
        'id', 'legacy_release_id', 'artist_id', 'genre_id', 'format_id',
        'alternate_artist_name', 'album_artist', 'album_title', 'label', 'code_number',
        'on_streaming', 'artwork_url', 'artist_name', 'canonical_entity_id'];
    cta_watched constant text[] := array['id', 'library_id', 'artist_name', 'track_title'];
    ours constant text[] := array(
        select object_name from identity_loader.station_objects where object_kind = 'table');
    tbl text;
    watched text;
begin
    if to_regclass('wxyc_schema.library_watermark') is null then
        create table wxyc_schema.library_watermark (
            id boolean primary key default true,
            last_modified_at timestamptz not null default now(),
            constraint library_watermark_single_row check (id = true)
        );
        insert into wxyc_schema.library_watermark default values;
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.library_watermark');
    end if;

    if to_regprocedure('wxyc_schema.touch_library_watermark()') is null then
        create function wxyc_schema.touch_library_watermark() returns trigger
        language plpgsql
        as $fn$
        begin
            update wxyc_schema.library_watermark
            set last_modified_at = greatest(now(), last_modified_at);
            return null;
        end
        $fn$;
        insert into identity_loader.station_objects
        values ('function', 'wxyc_schema.touch_library_watermark()');
    end if;

    if to_regprocedure('wxyc_schema.notify_row_change()') is null then
        create function wxyc_schema.notify_row_change() returns trigger
        language plpgsql
        as $fn$
        begin
            perform pg_notify('wxyc_row_change', json_build_object(
                'schema', tg_table_schema,
                'table', tg_table_name,
                'action', tg_op,
                'row', case when tg_op = 'DELETE' then row_to_json(old) else row_to_json(new) end
            )::text);
            return null;
        end
        $fn$;
        insert into identity_loader.station_objects
        values ('function', 'wxyc_schema.notify_row_change()');
    end if;

    -- Statement-level watermark triggers, with the station's column lists (restricted
    -- to the columns this project's copy of the table has).
    if 'wxyc_schema.library' = any(ours) then
        select string_agg(quote_ident(column_name), ', ' order by column_name) into watched
        from information_schema.columns
        where table_schema = 'wxyc_schema' and table_name = 'library'
            and column_name = any(library_watched);
        execute format(
            'create trigger library_watermark_touch after insert or delete or update of %s '
            'on wxyc_schema.library for each statement '
            'execute function wxyc_schema.touch_library_watermark()', watched);
        create trigger library_watermark_truncate after truncate on wxyc_schema.library
            for each statement execute function wxyc_schema.touch_library_watermark();
    end if;

    if 'wxyc_schema.compilation_track_artist' = any(ours) then
        execute format(
            'create trigger compilation_track_artist_watermark_touch '
            'after insert or delete or update of %s '
            'on wxyc_schema.compilation_track_artist for each statement '
            'execute function wxyc_schema.touch_library_watermark()',
            array_to_string(cta_watched, ', '));
        create trigger compilation_track_artist_watermark_truncate
            after truncate on wxyc_schema.compilation_track_artist
            for each statement execute function wxyc_schema.touch_library_watermark();
    end if;

    foreach tbl in array array['artists', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) then
            execute format(
                'create trigger %I after insert or update or delete or truncate '
                'on wxyc_schema.%I for each statement '
                'execute function wxyc_schema.touch_library_watermark()',
                tbl || '_watermark_touch', tbl);
        end if;
    end loop;

    -- Per-row change notification.
    foreach tbl in array array['library', 'artists', 'compilation_track_artist', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) then
            execute format(
                'create trigger %I after insert or update or delete '
                'on wxyc_schema.%I for each row '
                'execute function wxyc_schema.notify_row_change()',
                tbl || '_row_change_notify', tbl);
        end if;
    end loop;

    if to_regtype('wxyc_schema.flowsheet_entry_type') is null then
        create type wxyc_schema.flowsheet_entry_type as enum (
            'track', 'show_start', 'show_end', 'dj_join', 'dj_leave', 'talkset',
            'breakpoint', 'message'
        );
        insert into identity_loader.station_objects
        values ('type', 'wxyc_schema.flowsheet_entry_type');
    end if;

    if to_regclass('wxyc_schema.flowsheet') is null then
        create table wxyc_schema.flowsheet (
            id serial primary key,
            entry_type wxyc_schema.flowsheet_entry_type not null default 'track',
            add_time timestamptz not null default now(),
            artist_name varchar(128) not null default '',
            album_title varchar(128) not null default '',
            track_title varchar(128) not null default ''
        );
        create index flowsheet_entry_type_idx on wxyc_schema.flowsheet (entry_type);
        insert into identity_loader.station_objects values ('table', 'wxyc_schema.flowsheet');
    end if;
end
$$;
