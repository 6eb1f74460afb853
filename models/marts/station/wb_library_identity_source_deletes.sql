{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- library_identity_source rows the write-back deletes: the project's own rows for a
-- source that the newly written verdict no longer carries. Other writers' rows are
-- never deleted.
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

final as (

    select
        station_sources.library_id,
        station_sources.source
    from station_sources
    inner join written on station_sources.library_id = written.library_id
    where
        {{ is_project_row('station_sources.notes') }}
        and not exists (
            select 1
            from provenance
            where
                provenance.verdict_id = written.verdict_id
                and provenance.source = station_sources.source
                and provenance.is_usable
        )

)

select * from final
