-- One row per provenance entry of a verdict (result -> 'provenance').
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

entries as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        {{ provenance_entry_columns() }}
    from verdicts
    cross join lateral {{ verdict_entries('provenance') }}

)

select * from entries
