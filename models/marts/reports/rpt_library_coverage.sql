-- Library identity coverage, one row per cohort plus one for the whole library.
-- covered = resolved + compilation (a compilation has per-track identities instead of
-- an artist identity). resolved counts rows with a stored identity only; merge_skipped
-- rows have an artist verdict the merge did not store (rpt_library_merge_skipped says
-- why). legacy_scope_rows is what the old canonical-only predicate saw.
with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

cohorts (cohort, cohort_order) as (

    -- Every cohort gets a row, even in an empty library.
    values ('va', 1), ('non_va', 2), ('all', 3)

),

counts as (

    select
        case when grouping(cohort) = 1 then 'all' else cohort end as cohort,
        count(*) as library_rows,
        count(*) filter (where status <> 'never_attempted') as ever_attempted,
        count(*) filter (where status = 'resolved') as resolved,
        count(*) filter (where status = 'compilation') as compilation,
        count(*) filter (where status = 'unresolved') as unresolved,
        count(*) filter (where status = 'merge_skipped') as merge_skipped,
        count(*) filter (where status = 'never_attempted') as never_attempted,
        count(*) filter (where artist_name is null) as without_artist_name,
        count(*) filter (where canonical_entity_id is not null) as legacy_scope_rows
    from status
    group by grouping sets ((cohort), ())

),

final as (

    select
        cohorts.cohort::text as cohort,
        cohorts.cohort_order,
        coalesce(counts.library_rows, 0) as library_rows,
        coalesce(counts.ever_attempted, 0) as ever_attempted,
        coalesce(counts.resolved, 0) as resolved,
        coalesce(counts.compilation, 0) as compilation,
        coalesce(counts.unresolved, 0) as unresolved,
        coalesce(counts.merge_skipped, 0) as merge_skipped,
        coalesce(counts.never_attempted, 0) as never_attempted,
        coalesce(counts.resolved + counts.compilation, 0) as covered,
        coalesce(counts.without_artist_name, 0) as without_artist_name,
        coalesce(counts.legacy_scope_rows, 0) as legacy_scope_rows,
        round(100.0 * counts.ever_attempted / nullif(counts.library_rows, 0), 2) as attempted_pct,
        round(100.0 * counts.resolved / nullif(counts.library_rows, 0), 2) as resolved_pct,
        round(100.0 * (counts.resolved + counts.compilation) / nullif(counts.library_rows, 0), 2)
            as covered_pct,
        round(100.0 * counts.legacy_scope_rows / nullif(counts.library_rows, 0), 2)
            as legacy_scope_pct
    from cohorts
    left join counts on cohorts.cohort = counts.cohort

)

select * from final
