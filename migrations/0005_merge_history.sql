-- depends: 0004_merge_state
-- Which merge, verdict and run archived each station history row, as columns rather
-- than text in the row's reason: one row per library_identity_history row the
-- write-back inserts, written in the same statement. No foreign key to the station's
-- table: the project never alters it and holds no REFERENCES on it.
-- Guard: none required; a new, empty table only.

create table identity_loader.merge_history (
    history_id bigint primary key,
    merge_id bigint not null references identity_loader.merges (merge_id),
    run_id uuid,
    verdict_id bigint not null,
    library_id integer not null
);

create index merge_history_run_idx on identity_loader.merge_history (run_id);
