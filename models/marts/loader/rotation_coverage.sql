-- Rotation resolvable coverage, one row: active rows with both a Discogs release id and
-- an LML identity, of those with a release id.
with

rotation as (

    select * from {{ ref('stg_station__rotation') }}

),

refresh_results as (

    select * from {{ ref('stg_loader__rotation_refresh_results') }}

),

counts as (

    select
        count(*) filter (where is_active) as active,
        count(*) filter (where is_active and discogs_release_id is not null) as active_with_discogs,
        count(*) filter (
            where is_active and discogs_release_id is not null and lml_identity_id is not null
        ) as active_with_lml,
        count(*) filter (where is_active and lml_identity_id is null) as active_without_lml_identity,
        count(distinct lml_identity_id) filter (where is_active) as distinct_active_identities
    from rotation

),

warmed as (

    select max(refreshed_at) as last_warmed_at
    from refresh_results
    where status = 'warmed'

),

final as (

    select
        counts.active,
        counts.active_with_discogs,
        counts.active_with_lml,
        counts.active_without_lml_identity,
        counts.distinct_active_identities,
        round(100.0 * counts.active_with_lml / nullif(counts.active_with_discogs, 0), 2)
            as resolvable_coverage_pct,
        warmed.last_warmed_at
    from counts
    cross join warmed

)

select * from final
