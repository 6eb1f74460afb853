-- depends: 0007_review_decisions
-- What the last build of a dbt selection deployed, per dbt schema: the project's stamp
-- (its files, the vars it ran with, the dbt release), the relations it built and a digest
-- of their definitions. A resolve whose stamp and digest still match reads the deployed
-- candidates without starting dbt.
-- Guard: none required; a new, empty table only.

create table identity_loader.dbt_builds (
    dbt_schema text not null,
    selection text not null,
    project_stamp text not null,
    relations text [] not null,
    definitions text not null,
    built_at timestamptz not null default now(),
    primary key (dbt_schema, selection)
);
