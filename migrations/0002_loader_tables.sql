-- depends: 0001_station_tables
-- The loader's own tables: runs, the append-only raw verdict log and the
-- cache-refresh results log. Guard: none required; new, empty tables only.

create table identity_loader.runs (
    run_id uuid primary key,
    job text not null,
    mode text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null default 'running',
    options jsonb not null default '{}'::jsonb,
    counters jsonb not null default '{}'::jsonb,
    error text,
    constraint runs_job_check
        check (job in ('resolve', 'rotation_refresh', 'rotation_backfill')),
    constraint runs_status_check
        check (status in ('running', 'succeeded', 'failed', 'interrupted', 'gate_failed', 'alert'))
);

create index runs_job_started_idx on identity_loader.runs (job, started_at desc);

-- One row per library row per attempt. Rows are only ever inserted.
create table identity_loader.raw_verdicts (
    verdict_id bigint generated always as identity primary key,
    run_id uuid not null references identity_loader.runs (run_id),
    library_id integer not null,
    attempted_at timestamptz not null default now(),
    cohort text not null,
    kind text not null,
    method text,
    confidence double precision,
    discogs_artist_id bigint,
    musicbrainz_artist_id text,
    wikidata_qid text,
    spotify_artist_id text,
    apple_music_artist_id text,
    bandcamp_id text,
    tracks_contract_version integer,
    tracks_attempted boolean,
    track_count integer not null default 0,
    request jsonb not null,
    result jsonb not null,
    constraint raw_verdicts_run_library_key unique (run_id, library_id),
    constraint raw_verdicts_cohort_check check (cohort in ('va', 'non_va')),
    constraint raw_verdicts_kind_check
        check (kind in ('single_artist', 'compilation', 'unresolved')),
    constraint raw_verdicts_confidence_range check (confidence between 0 and 1)
);

-- Latest verdict per library row (candidates, merge).
create index raw_verdicts_library_latest_idx
    on identity_loader.raw_verdicts (library_id, attempted_at desc, verdict_id desc);

-- One row per identity per refresh attempt.
create table identity_loader.rotation_refresh_results (
    result_id bigint generated always as identity primary key,
    run_id uuid not null references identity_loader.runs (run_id),
    identity_id bigint not null,
    refreshed_at timestamptz not null default now(),
    status text not null,
    warmed_releases integer not null default 0,
    warmed_artists integer not null default 0,
    sources jsonb,
    message text
);

create index rotation_refresh_results_identity_idx
    on identity_loader.rotation_refresh_results (identity_id, refreshed_at desc);
