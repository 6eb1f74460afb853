{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- library_identity_source rows the write-back inserts or updates: the usable sources
-- of each identity row written, except rows another writer owns and rows that would
-- not change.
with

written as (

    select * from {{ ref('wb_library_identity') }}

),

provenance as (

    select * from {{ ref('int_verdicts__provenance_checked') }}

),

station_sources as (

    select * from {{ ref('stg_station__library_identity_source') }}

),

offered as (

    select
        provenance.library_id,
        provenance.source,
        provenance.external_id,
        provenance.method,
        provenance.confidence::real as confidence,
        written.last_verified_at,
        case
            when provenance.method = 'cross_source_agreement' then written.agreement_sources
        end as boost_sources,
        written.notes
    from written
    inner join provenance
        on
            written.verdict_id = provenance.verdict_id
            and provenance.is_usable

),

final as (

    select offered.*
    from offered
    left join station_sources as current_row
        on
            offered.library_id = current_row.library_id
            and offered.source = current_row.source
    where
        current_row.library_id is null
        or (
            {{ is_project_row('current_row.notes') }}
            and (
                offered.external_id, offered.method, offered.confidence,
                offered.last_verified_at, offered.boost_sources, offered.notes
            ) is distinct from (
                current_row.external_id, current_row.method, current_row.confidence,
                current_row.last_verified_at, current_row.boost_sources, current_row.notes
            )
        )

)

select * from final
