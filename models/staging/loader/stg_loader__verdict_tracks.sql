-- One row per per-track entry of a verdict (result -> 'tracks').
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

entries as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.kind,
        verdicts.tracks_counted,
        {{ track_entry_columns() }}
    from verdicts
    cross join lateral {{ verdict_entries('tracks') }}

)

select * from entries
