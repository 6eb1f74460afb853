-- depends: 0003_station_parity
-- The merge's own state, written in the same transaction as the station tables:
-- one row per applied merge (how far into the verdict log it reached, and what it
-- wrote), every item it skipped, and all six artist-level ids of each identity.
-- Guard: none required; new, empty tables only.

create table identity_loader.merges (
    merge_id bigint generated always as identity primary key,
    run_id uuid references identity_loader.runs (run_id),
    merged_at timestamptz not null default now(),
    from_verdict_id bigint not null,
    through_verdict_id bigint not null,
    full_rebuild boolean not null default false,
    counts jsonb not null default '{}'::jsonb
);

create index merges_through_idx on identity_loader.merges (through_verdict_id desc);

create table identity_loader.merge_skips (
    merge_id bigint not null references identity_loader.merges (merge_id),
    run_id uuid,
    verdict_id bigint,
    library_id integer not null,
    skip_level text not null,
    reason text not null,
    detail text,
    constraint merge_skips_level_check
        check (skip_level in ('verdict', 'provenance', 'track'))
);

create index merge_skips_run_idx on identity_loader.merge_skips (run_id);
create index merge_skips_verdict_idx on identity_loader.merge_skips (verdict_id);

create table identity_loader.library_identity_artist_ids (
    library_id integer primary key,
    discogs_artist_id bigint,
    musicbrainz_artist_id text,
    wikidata_qid text,
    spotify_artist_id text,
    apple_music_artist_id text,
    bandcamp_id text,
    method text not null,
    confidence real not null,
    last_verified_at timestamptz not null,
    verdict_id bigint not null,
    run_id uuid not null
);
