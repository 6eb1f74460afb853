-- The verdicts a merge judged and did not write, with the reason: one row per verdict
-- (a replay replaces a verdict's earlier skip row).
with

skips as (

    select * from {{ ref('stg_loader__merge_skips') }}

),

final as (

    select
        verdict_id,
        library_id,
        reason
    from skips
    where skip_level = 'verdict'

)

select * from final
