{{
    config(
        materialized='table',
        tags=['merge'],
        indexes=[
            {'columns': ['verdict_id'], 'unique': true},
            {'columns': ['library_id']},
        ],
    )
}}
-- The verdicts landed since the last applied merge: the only input of an incremental
-- merge, so its cost follows what is new rather than the size of the log. With var
-- merge_full_rebuild it is the whole log (a replay after a merge rule changes).
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

merge_rows as (

    select * from {{ source('loader', 'merges') }}

),

merge_state as (

    select coalesce(max(through_verdict_id), 0) as merged_through
    from merge_rows

),

final as (

    select
        verdicts.*,
        -- The write-back refuses change sets built against another merge state.
        (select merge_state.merged_through from merge_state) as merged_through
    from verdicts
    -- A scalar bound keeps the primary-key index usable through the staging view.
    where
        verdicts.verdict_id > (select merge_state.merged_through from merge_state)
        or {{ var('merge_full_rebuild') }}

)

select * from final
