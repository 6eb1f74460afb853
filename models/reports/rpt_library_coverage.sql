-- Library identity coverage, one row per cohort plus one for the whole library.
-- covered = resolved + compilation (a compilation has per-track identities instead of
-- an artist identity); legacy_scope_rows is what the old canonical-only predicate saw.
with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

counts as (

    select
        coalesce(cohort, 'all') as cohort,
        count(*) as library_rows,
        count(*) filter (where status <> 'never_attempted') as ever_attempted,
        count(*) filter (where status = 'resolved') as resolved,
        count(*) filter (where status = 'compilation') as compilation,
        count(*) filter (where status = 'unresolved') as unresolved,
        count(*) filter (where status = 'never_attempted') as never_attempted,
        count(*) filter (where artist_name is null) as without_artist_name,
        count(*) filter (where canonical_entity_id is not null) as legacy_scope_rows
    from status
    group by grouping sets ((cohort), ())

),

final as (

    select
        cohort,
        case cohort when 'va' then 1 when 'non_va' then 2 else 3 end as cohort_order,
        library_rows,
        ever_attempted,
        resolved,
        compilation,
        unresolved,
        never_attempted,
        resolved + compilation as covered,
        without_artist_name,
        legacy_scope_rows,
        round(100.0 * ever_attempted / nullif(library_rows, 0), 2) as attempted_pct,
        round(100.0 * resolved / nullif(library_rows, 0), 2) as resolved_pct,
        round(100.0 * (resolved + compilation) / nullif(library_rows, 0), 2) as covered_pct,
        round(100.0 * legacy_scope_rows / nullif(library_rows, 0), 2) as legacy_scope_pct
    from counts

)

select * from final
