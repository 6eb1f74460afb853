-- depends: 0002_loader_tables
-- What the station's database does around the tables this project writes, for the
-- station tables that 0001 created (standalone, demo and test databases): the
-- catalogue watermark and its statement-level triggers, the per-row change
-- notification (public.cdc_notify()), the artist-name cascade, and the on-air log
-- (flowsheet) that the rotation backfill reads, each under the station's own name and
-- with the station's own definition. A station's own tables already carry all of this:
-- nothing is created in a database whose station tables this project did not create.
-- Guard: none required; this creates empty objects and triggers and touches no data.

do $$
declare
    ours constant text[] := array(
        select object_name from identity_loader.station_objects where object_kind = 'table');
    tbl text;
begin
    -- A station's own database: everything below is already there, under these names.
    if cardinality(ours) = 0 then
        return;
    end if;

    if to_regclass('wxyc_schema.library_watermark') is null then
        create table wxyc_schema.library_watermark (
            id boolean primary key default true,
            last_modified_at timestamptz not null default now(),
            constraint library_watermark_singleton check (id = true)
        );
        insert into wxyc_schema.library_watermark default values;
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.library_watermark');
    end if;

    if to_regprocedure('wxyc_schema.touch_library_watermark()') is null then
        create function wxyc_schema.touch_library_watermark() returns trigger
        language plpgsql
        as $fn$
BEGIN
  UPDATE wxyc_schema.library_watermark
  SET last_modified_at = GREATEST(now(), last_modified_at)   -- monotonic; NO +1s floor (see header)
  WHERE id = true;
  RETURN NULL;
END;
$fn$;
        insert into identity_loader.station_objects
        values ('function', 'wxyc_schema.touch_library_watermark()');
    end if;

    if to_regprocedure('public.cdc_notify()') is null then
        create function public.cdc_notify() returns trigger
        language plpgsql
        as $fn$
DECLARE
  payload jsonb;
  payload_text text;
  row_data jsonb;
  pk_value text;
  return_row record;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row_data := to_jsonb(OLD);
    return_row := OLD;
  ELSE
    row_data := to_jsonb(NEW);
    return_row := NEW;
  END IF;

  BEGIN
    payload := jsonb_build_object(
      'table', TG_TABLE_NAME,
      'schema', TG_TABLE_SCHEMA,
      'action', TG_OP,
      'data', row_data,
      'timestamp', (extract(epoch from clock_timestamp()) * 1000)::bigint
    );
    payload_text := payload::text;

    -- pg_notify hard-caps each payload at 8000 bytes. We check below 7800
    -- to leave headroom: the LISTEN-side JSON re-encode is identity, but
    -- pathological Unicode in the row could grow the wire form by a few
    -- bytes during transit.
    IF octet_length(payload_text) > 7800 THEN
      pk_value := row_data->>'id';
      PERFORM pg_notify(
        'cdc_oversized',
        jsonb_build_object(
          'table', TG_TABLE_NAME,
          'schema', TG_TABLE_SCHEMA,
          'action', TG_OP,
          'primary_key', pk_value,
          'payload_bytes', octet_length(payload_text),
          'timestamp', (extract(epoch from clock_timestamp()) * 1000)::bigint,
          'reason', 'payload_too_large'
        )::text
      );
      RAISE WARNING 'cdc_notify oversized payload: table=% action=% bytes=% pk=%',
        TG_TABLE_NAME, TG_OP, octet_length(payload_text), COALESCE(pk_value, '<none>');
    ELSE
      PERFORM pg_notify('cdc', payload_text);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    -- Last-resort visibility path. The previous behavior silently swallowed
    -- the exception here and returned NULL. We keep returning the row (the
    -- originating mutation must not roll back on a notify failure) but emit
    -- a dedicated cdc_error notification *and* a WARNING so the failure is
    -- visible to the listener fan-out, not just the PG log.
    RAISE WARNING 'cdc_notify failed: table=% action=% sqlstate=% sqlerrm=%',
      TG_TABLE_NAME, TG_OP, SQLSTATE, SQLERRM;
    BEGIN
      PERFORM pg_notify(
        'cdc_error',
        jsonb_build_object(
          'table', TG_TABLE_NAME,
          'schema', TG_TABLE_SCHEMA,
          'action', TG_OP,
          'sqlstate', SQLSTATE,
          'sqlerrm', SQLERRM,
          'timestamp', (extract(epoch from clock_timestamp()) * 1000)::bigint,
          'reason', 'trigger_exception'
        )::text
      );
    EXCEPTION WHEN OTHERS THEN
      -- pg_notify on cdc_error itself failed (e.g. its own payload too
      -- large, which would be extraordinary given the fixed shape).
      -- Nothing else to do; the outer WARNING above is the last signal.
      NULL;
    END;
  END;

  RETURN return_row;
END;
$fn$;
        insert into identity_loader.station_objects values ('function', 'public.cdc_notify()');
    end if;

    if 'wxyc_schema.library' = any(ours) then
        create trigger touch_library_watermark
            after insert or delete or update of
                id, legacy_release_id, artist_id, genre_id, format_id, alternate_artist_name,
                album_artist, album_title, label, code_number, on_streaming, artwork_url,
                artist_name, canonical_entity_id
                or truncate
            on wxyc_schema.library for each statement
            execute function wxyc_schema.touch_library_watermark();
    end if;

    if 'wxyc_schema.compilation_track_artist' = any(ours) then
        create trigger touch_library_watermark_from_compilation_track_artist
            after insert or delete or update of id, library_id, artist_name, track_title
                or truncate
            on wxyc_schema.compilation_track_artist for each statement
            execute function wxyc_schema.touch_library_watermark();
    end if;

    foreach tbl in array array['artists', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) then
            execute format(
                'create trigger %I after insert or delete or update or truncate '
                'on wxyc_schema.%I for each statement '
                'execute function wxyc_schema.touch_library_watermark()',
                'touch_library_watermark_from_' || tbl, tbl);
        end if;
    end loop;

    -- Per-row change notification.
    foreach tbl in array array['library', 'artists', 'compilation_track_artist', 'rotation'] loop
        if 'wxyc_schema.' || tbl = any(ours) then
            execute format(
                'create trigger %I after insert or delete or update '
                'on wxyc_schema.%I for each row execute function public.cdc_notify()',
                'cdc_' || tbl, tbl);
        end if;
    end loop;

    -- An artist's new name reaches its library rows.
    if 'wxyc_schema.artists' = any(ours) then
        if to_regprocedure('wxyc_schema.cascade_library_artist_name()') is null then
            create function wxyc_schema.cascade_library_artist_name() returns trigger
            language plpgsql
            as $fn$
BEGIN
  UPDATE wxyc_schema.library
     SET artist_name = NEW.artist_name
   WHERE artist_id = NEW.id
     AND artist_name IS DISTINCT FROM NEW.artist_name;
  RETURN NULL;
END;
$fn$;
            insert into identity_loader.station_objects
            values ('function', 'wxyc_schema.cascade_library_artist_name()');
        end if;
        create trigger cascade_library_artist_name
            after update of artist_name on wxyc_schema.artists for each row
            when (old.artist_name::text is distinct from new.artist_name::text)
            execute function wxyc_schema.cascade_library_artist_name();
    end if;

    if to_regtype('wxyc_schema.flowsheet_entry_type') is null then
        create type wxyc_schema.flowsheet_entry_type as enum (
            'track', 'show_start', 'show_end', 'dj_join', 'dj_leave', 'talkset',
            'breakpoint', 'message'
        );
        insert into identity_loader.station_objects
        values ('type', 'wxyc_schema.flowsheet_entry_type');
    end if;

    if to_regtype('wxyc_schema.metadata_status_enum') is null then
        create type wxyc_schema.metadata_status_enum as enum (
            'pending', 'enriching', 'enriched_match', 'enriched_no_match', 'failed_no_retry'
        );
        insert into identity_loader.station_objects
        values ('type', 'wxyc_schema.metadata_status_enum');
    end if;

    if to_regclass('wxyc_schema.flowsheet') is null then
        create table wxyc_schema.flowsheet (
            id serial primary key,
            show_id integer,
            album_id integer,
            rotation_id integer,
            track_title varchar(128),
            album_title varchar(128),
            artist_name varchar(128),
            record_label varchar(128),
            play_order integer not null,
            request_flag boolean not null default false,
            message varchar(250),
            add_time timestamptz not null default now(),
            entry_type wxyc_schema.flowsheet_entry_type not null default 'track',
            label_id integer,
            segue boolean not null default false,
            legacy_entry_id integer,
            artwork_url varchar(512),
            discogs_url varchar(512),
            release_year smallint,
            spotify_url varchar(512),
            apple_music_url varchar(512),
            youtube_music_url varchar(512),
            bandcamp_url varchar(512),
            soundcloud_url varchar(512),
            artist_bio text,
            artist_wikipedia_url varchar(512),
            legacy_release_id integer,
            dj_name text,
            linkage_source text,
            linkage_confidence real,
            linked_at timestamptz,
            legacy_link_attempted_at timestamptz,
            search_doc tsvector generated always as (
                setweight(to_tsvector('simple'::regconfig, coalesce(artist_name, '')), 'A')
                || setweight(to_tsvector('simple'::regconfig, coalesce(track_title, '')), 'B')
                || setweight(to_tsvector('simple'::regconfig, coalesce(dj_name, '')), 'B')
                || setweight(to_tsvector('simple'::regconfig, coalesce(album_title, '')), 'C')
                || setweight(to_tsvector('simple'::regconfig, coalesce(record_label, '')), 'D')
            ) stored,
            metadata_attempt_at timestamptz,
            track_position text,
            metadata_status wxyc_schema.metadata_status_enum not null default 'pending',
            enriching_since timestamptz,
            updated_at timestamptz not null default now(),
            radio_hour timestamptz,
            composer text,
            composer_source text,
            no_match_recheck_attempted_at timestamptz
        );
        create index flowsheet_entry_type_idx on wxyc_schema.flowsheet (entry_type);
        create index flowsheet_track_add_time_idx on wxyc_schema.flowsheet (add_time desc)
            where entry_type = 'track';
        insert into identity_loader.station_objects values ('table', 'wxyc_schema.flowsheet');

        create table wxyc_schema.flowsheet_watermark (
            id boolean primary key default true,
            last_modified_at timestamptz not null default now(),
            constraint flowsheet_watermark_singleton check (id = true)
        );
        insert into wxyc_schema.flowsheet_watermark default values;
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.flowsheet_watermark');

        create function wxyc_schema.bump_flowsheet_updated_at() returns trigger
        language plpgsql
        as $fn$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$fn$;
        create function wxyc_schema.touch_flowsheet_watermark() returns trigger
        language plpgsql
        as $fn$
BEGIN
  UPDATE wxyc_schema.flowsheet_watermark
  SET last_modified_at = GREATEST(now(), last_modified_at + interval '1 second')
  WHERE id = true;
  RETURN NULL;
END;
$fn$;
        insert into identity_loader.station_objects values
            ('function', 'wxyc_schema.bump_flowsheet_updated_at()'),
            ('function', 'wxyc_schema.touch_flowsheet_watermark()');
        create trigger bump_flowsheet_updated_at
            before insert or update on wxyc_schema.flowsheet for each row
            execute function wxyc_schema.bump_flowsheet_updated_at();
        create trigger cdc_flowsheet
            after insert or delete or update on wxyc_schema.flowsheet for each row
            execute function public.cdc_notify();
        create trigger touch_flowsheet_watermark
            after insert or delete or update on wxyc_schema.flowsheet for each statement
            execute function wxyc_schema.touch_flowsheet_watermark();
    end if;
end
$$;
