-- Station tables (wxyc_schema), for standalone and demo databases.
--
-- Every object is created only when the database lacks it, and each one this
-- migration creates is recorded in identity_loader.station_objects so that the
-- rollback drops exactly those and never a station's own tables.
-- Guard: none required; this creates empty objects and touches no data.
-- Columns, types and functions are the station's own (tests hold them to the station's
-- schema file). Not reproduced: pg_trgm indexes, and the tables this project never
-- touches (genres, format, labels, ...), so library has no foreign keys to them. The
-- station's triggers come with 0003.

-- identity_loader exists already: the migration tool keeps its bookkeeping there.

create table if not exists identity_loader.station_objects (
    object_kind text not null,
    object_name text not null,
    created_at timestamptz not null default now(),
    primary key (object_kind, object_name)
);

do $$
begin
    -- Not CREATE SCHEMA IF NOT EXISTS: that needs CREATE on the database even when the
    -- schema exists, which a station's role lacks.
    if to_regnamespace('wxyc_schema') is null then
        create schema wxyc_schema;
    end if;

    if to_regtype('public.freq_enum') is null then
        create type public.freq_enum as enum ('S', 'L', 'M', 'H');
        insert into identity_loader.station_objects values ('type', 'public.freq_enum');
    end if;

    if to_regtype('wxyc_schema.discogs_release_id_source_enum') is null then
        create type wxyc_schema.discogs_release_id_source_enum as enum (
            'tubafrenzy_paste', 'lml_offline_backfill', 'discogs_direct_backfill',
            'library_identity', 'md_verified', 'recheck_after_unavailable'
        );
        insert into identity_loader.station_objects
        values ('type', 'wxyc_schema.discogs_release_id_source_enum');
    end if;

    if to_regprocedure('wxyc_schema.fold_artist_name(text)') is null then
        create function wxyc_schema.fold_artist_name(input text) returns text
        language sql immutable parallel safe
        as $fn$
  SELECT lower(regexp_replace(normalize(coalesce(input, ''), NFD), '[\u0300-\u036f]', '', 'g'));
$fn$;
        insert into identity_loader.station_objects
        values ('function', 'wxyc_schema.fold_artist_name(text)');
    end if;

    if to_regprocedure('wxyc_schema.normalize_artist_name(text)') is null then
        create function wxyc_schema.normalize_artist_name(input text) returns text
        language sql immutable parallel safe
        as $fn$
  SELECT lower(regexp_replace(coalesce(input, ''), '^the[ \t\n\r\f\v]+', '', 'i'));
$fn$;
        insert into identity_loader.station_objects
        values ('function', 'wxyc_schema.normalize_artist_name(text)');
    end if;

    if to_regclass('wxyc_schema.artists') is null then
        create table wxyc_schema.artists (
            id serial primary key,
            artist_name varchar(128) not null,
            alphabetical_name varchar(128) not null,
            code_letters varchar(4) not null,
            add_date date not null default now(),
            last_modified timestamptz not null default now(),
            discogs_artist_id integer,
            musicbrainz_artist_id varchar(64),
            wikidata_qid varchar(32),
            spotify_artist_id varchar(64),
            apple_music_artist_id varchar(64),
            bandcamp_id varchar(255)
        );
        create index artists_code_letters_idx on wxyc_schema.artists (code_letters);
        create index artists_fold_name_idx
            on wxyc_schema.artists (wxyc_schema.fold_artist_name(artist_name));
        create index artists_normalize_name_idx
            on wxyc_schema.artists (wxyc_schema.normalize_artist_name(artist_name));
        insert into identity_loader.station_objects values ('table', 'wxyc_schema.artists');
    end if;

    if to_regclass('wxyc_schema.library') is null then
        create sequence wxyc_schema.library_legacy_release_id_seq start with 1000000;
        create table wxyc_schema.library (
            id serial primary key,
            artist_id integer not null references wxyc_schema.artists (id),
            genre_id integer not null,
            format_id integer not null,
            album_title varchar(128) not null,
            label varchar(128),
            label_id integer,
            disc_quantity smallint not null default 1,
            plays integer not null default 0,
            date_lost timestamptz,
            date_found timestamptz,
            on_streaming boolean,
            artwork_url varchar(512),
            artist_name varchar(128),
            album_artist varchar(128),
            alternate_artist_name varchar(128),
            code_number smallint not null,
            code_volume_letters varchar(4),
            legacy_release_id integer not null
                default nextval('wxyc_schema.library_legacy_release_id_seq'),
            canonical_entity_id text,
            canonical_entity_confidence real,
            canonical_entity_resolved_at timestamptz,
            unresolved_attempted_at timestamptz,
            discogs_unavailable boolean not null default false,
            discogs_unavailable_note varchar(500),
            last_discogs_recheck_at timestamptz,
            add_date timestamptz not null default now(),
            last_modified timestamptz not null default now(),
            search_doc tsvector generated always as (
                setweight(to_tsvector('simple'::regconfig, coalesce(artist_name, '')), 'A')
                || setweight(to_tsvector('simple'::regconfig, coalesce(album_title, '')), 'B')
            ) stored,
            constraint library_discogs_unavailable_note_check
                check (discogs_unavailable_note is null or discogs_unavailable)
        );
        alter sequence wxyc_schema.library_legacy_release_id_seq
            owned by wxyc_schema.library.legacy_release_id;
        create unique index library_legacy_release_id_idx
            on wxyc_schema.library (legacy_release_id);
        create index library_canonical_entity_id_idx on wxyc_schema.library (canonical_entity_id);
        create index library_search_doc_idx on wxyc_schema.library using gin (search_doc);
        create index library_discogs_unavailable_idx
            on wxyc_schema.library (id) where discogs_unavailable = true;
        insert into identity_loader.station_objects values ('table', 'wxyc_schema.library');
    end if;

    if to_regclass('wxyc_schema.library_identity') is null then
        create table wxyc_schema.library_identity (
            library_id integer primary key references wxyc_schema.library (id),
            discogs_master_id integer,
            discogs_release_id integer,
            musicbrainz_release_group_mbid uuid,
            musicbrainz_release_mbid uuid,
            musicbrainz_recording_mbid uuid,
            wikidata_qid text,
            spotify_id text,
            apple_music_id text,
            last_verified_at timestamptz not null,
            method text not null,
            confidence real not null,
            agreement_sources text,
            notes text,
            distinct_unresolved_sources integer generated always as (
                (case when discogs_master_id is null then 1 else 0 end)
                + (case when discogs_release_id is null then 1 else 0 end)
                + (case when musicbrainz_release_group_mbid is null then 1 else 0 end)
                + (case when musicbrainz_release_mbid is null then 1 else 0 end)
                + (case when musicbrainz_recording_mbid is null then 1 else 0 end)
                + (case when wikidata_qid is null then 1 else 0 end)
                + (case when spotify_id is null then 1 else 0 end)
                + (case when apple_music_id is null then 1 else 0 end)
            ) stored,
            constraint library_identity_confidence_range check (confidence between 0 and 1)
        );
        create index library_identity_audit_idx
            on wxyc_schema.library_identity (confidence, distinct_unresolved_sources desc);
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.library_identity');
    end if;

    if to_regclass('wxyc_schema.library_identity_source') is null then
        create table wxyc_schema.library_identity_source (
            library_id integer not null references wxyc_schema.library (id),
            source text not null,
            external_id text not null,
            method text not null,
            confidence real not null,
            last_verified_at timestamptz not null,
            boost_sources text,
            notes text,
            constraint library_identity_source_library_id_source_pk primary key (library_id, source),
            constraint library_identity_source_confidence_range
                check (confidence between 0 and 1)
        );
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.library_identity_source');
    end if;

    if to_regclass('wxyc_schema.library_identity_history') is null then
        create table wxyc_schema.library_identity_history (
            history_id serial primary key,
            library_id integer not null,
            discogs_master_id integer,
            discogs_release_id integer,
            musicbrainz_release_group_mbid uuid,
            musicbrainz_release_mbid uuid,
            musicbrainz_recording_mbid uuid,
            wikidata_qid text,
            spotify_id text,
            apple_music_id text,
            last_verified_at timestamptz,
            method text,
            confidence real,
            agreement_sources text,
            notes text,
            superseded_at timestamptz not null default now(),
            superseded_reason text not null,
            reason_category text,
            archived_at timestamptz
        );
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.library_identity_history');
    end if;

    if to_regclass('wxyc_schema.compilation_track_artist') is null then
        create table wxyc_schema.compilation_track_artist (
            id serial primary key,
            library_id integer not null references wxyc_schema.library (id) on delete cascade,
            artist_name varchar(255) not null,
            track_title varchar(255),
            track_position varchar(20),
            track_artist_id integer references wxyc_schema.artists (id) on delete set null,
            track_artist_link_confidence real,
            track_artist_link_method text,
            constraint cta_track_artist_link_confidence_range
                check (track_artist_link_confidence between 0 and 1)
        );
        create unique index cta_unique_idx
            on wxyc_schema.compilation_track_artist (library_id, artist_name, track_title);
        create unique index cta_unique_null_track_idx
            on wxyc_schema.compilation_track_artist (library_id, artist_name)
            where track_title is null;
        create index cta_library_id_idx on wxyc_schema.compilation_track_artist (library_id);
        create index cta_artist_name_idx on wxyc_schema.compilation_track_artist (artist_name);
        create index cta_track_artist_id_idx
            on wxyc_schema.compilation_track_artist (track_artist_id);
        insert into identity_loader.station_objects
        values ('table', 'wxyc_schema.compilation_track_artist');
    end if;

    if to_regclass('wxyc_schema.rotation') is null then
        create table wxyc_schema.rotation (
            id serial primary key,
            album_id integer references wxyc_schema.library (id) on delete cascade,
            legacy_rotation_id integer unique,
            legacy_library_release_id integer,
            rotation_bin public.freq_enum not null,
            add_date date not null default now(),
            kill_date date,
            artist_name varchar(128),
            album_title varchar(128),
            record_label varchar(128),
            discogs_release_id integer,
            discogs_release_id_source wxyc_schema.discogs_release_id_source_enum
                not null default 'tubafrenzy_paste',
            discogs_release_id_resolve_attempted_at timestamptz,
            tracklist_lookup_attempted_at timestamptz,
            lml_identity_id integer,
            constraint rotation_discogs_release_id_not_sentinel
                check (discogs_release_id is null or discogs_release_id > 0)
        );
        create index rotation_album_id_idx on wxyc_schema.rotation (album_id);
        create index rotation_artist_album_idx on wxyc_schema.rotation
            (lower(trim(artist_name)), lower(trim(album_title)));
        insert into identity_loader.station_objects values ('table', 'wxyc_schema.rotation');
    end if;
end
$$;
