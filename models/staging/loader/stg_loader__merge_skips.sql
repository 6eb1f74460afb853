-- Everything the merges did not write, one row per skipped item (the merge's own log).
with

skips as (

    select * from {{ source('loader', 'merge_skips') }}

),

final as (

    select
        merge_id,
        run_id,
        verdict_id,
        library_id,
        skip_level,
        reason,
        detail
    from skips

)

select * from final
