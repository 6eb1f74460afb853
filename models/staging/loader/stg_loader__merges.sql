-- The merges applied, one row each: the verdict log range each covered and what it wrote.
with

applied as (

    select * from {{ source('loader', 'merges') }}

),

final as (

    select
        merge_id,
        run_id,
        merged_at,
        from_verdict_id,
        through_verdict_id,
        full_rebuild,
        counts
    from applied

)

select * from final
