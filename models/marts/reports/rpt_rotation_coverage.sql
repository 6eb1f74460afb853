-- Rotation resolvable coverage (the marts' rotation_coverage) against its gate
-- (at least var rotation_coverage_min_pct).
with

coverage as (

    select * from {{ ref('rotation_coverage') }}

),

final as (

    select
        active,
        active_with_discogs,
        active_with_lml,
        active_with_discogs - active_with_lml as active_missing_lml,
        active_without_lml_identity,
        distinct_active_identities,
        resolvable_coverage_pct,
        {{ var('rotation_coverage_min_pct') }}::numeric(5, 2) as gate_min_pct,
        -- Nothing resolvable means nothing missing (the rotation coverage command's rule).
        coalesce(resolvable_coverage_pct >= {{ var('rotation_coverage_min_pct') }}, true)
            as gate_passes,
        last_warmed_at
    from coverage

)

select * from final
