-- depends: 0006_station_schema_untouched
-- A person's decisions on library rows (`library-identity review apply`): keep the stored
-- identity as theirs (accept), remove it and refuse it from then on (reject), or use the
-- ids they wrote (set); who and when. The merge writes the latest decision of each row to
-- the station's identity tables, as a librarian's row, and stamps applied_at.
-- Guard: none required; a new, empty table of the project's own (no station table is
-- touched, so no identity gate applies).

create table identity_loader.review_decisions (
    decision_id bigint generated always as identity primary key,
    library_id integer not null,
    decision text not null,
    discogs_release_id integer,
    discogs_master_id integer,
    musicbrainz_release_group_mbid uuid,
    musicbrainz_release_mbid uuid,
    wikidata_qid text,
    spotify_id text,
    apple_music_id text,
    note text,
    decided_by text not null,
    decided_at timestamptz not null default now(),
    source_file text,
    source_line integer,
    applied_at timestamptz,
    constraint review_decisions_decision_check
        check (decision in ('accept', 'reject', 'set'))
);

create index review_decisions_library_idx
    on identity_loader.review_decisions (library_id, decision_id desc);
