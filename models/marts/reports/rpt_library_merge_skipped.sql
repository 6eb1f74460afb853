-- Library rows whose latest verdict is an artist identity that the merge did not store,
-- by cohort (and all) and reason: out of the method's confidence band, no usable
-- provenance, another writer's row, not merged yet, ...
with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

counts as (

    select
        case when grouping(cohort) = 1 then 'all' else cohort end as cohort,
        merge_skip_reason as reason,
        count(*) as library_rows
    from status
    where status = 'merge_skipped'
    group by grouping sets ((cohort, merge_skip_reason), (merge_skip_reason))

),

final as (

    select
        cohort::text as cohort,
        case cohort when 'va' then 1 when 'non_va' then 2 else 3 end as cohort_order,
        reason,
        library_rows
    from counts

)

select * from final
