{{
    config(
        materialized='incremental',
        schema='wxyc_schema',
        alias='library_identity_source',
        incremental_strategy='reconcile',
        unique_key=['library_id', 'source'],
        reconcile_key='library_id',
        full_refresh=false,
        on_schema_change='append_new_columns',
        tags=['merge'],
        pre_hook="{{ require_existing_table() }}",
        post_hook=[{"sql": "{{ analyze_if_owner(this) }}", "transaction": false}],
    )
}}
-- Post-hook: ANALYZE after the bulk write (station rule).
-- depends_on: {{ ref('library_identity') }}
-- The full source set of the verdict each station identity row reflects. For each
-- library row written here, sources LML no longer emits are deleted (defect #6).
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

station_sources as (

    select * from {{ ref('stg_station__library_identity_source') }}

),

provenance as (

    select * from {{ ref('int_verdicts__provenance_checked') }}

),

reflected as (

    -- Only verdicts the identity row reflects, and only when the stored sources are older.
    select desired.*
    from desired
    inner join station_identity
        on
            desired.library_id = station_identity.library_id
            and desired.attempted_at = station_identity.last_verified_at
    where not exists (
            select 1
            from station_sources
            where
                station_sources.library_id = desired.library_id
                and station_sources.last_verified_at >= desired.attempted_at
        )

),

final as (

    select
        provenance.library_id,
        provenance.source,
        provenance.external_id,
        provenance.method,
        provenance.confidence::real as confidence,
        provenance.attempted_at as last_verified_at,
        case
            when provenance.method = 'cross_source_agreement' then reflected.usable_sources
        end as boost_sources,
        reflected.notes
    from reflected
    inner join provenance
        on
            reflected.verdict_id = provenance.verdict_id
            and provenance.is_usable

)

select * from final
