-- Pre-existing states of the station's identity tables that the project did not cause
-- and does not repair: reported, never failing a run.
with

identity_rows as (

    select * from {{ ref('stg_station__library_identity') }}

),

source_rows as (

    select * from {{ ref('stg_station__library_identity_source') }}

),

counts as (

    select
        'identity_rows_without_sources' as anomaly,
        'Identity rows with no source row (e.g. old compilation rows)' as description,
        count(*) as station_rows
    from identity_rows
    where not exists (
            select 1 from source_rows
            where source_rows.library_id = identity_rows.library_id
        )

    union all

    select
        'other_writer_identity_rows' as anomaly,
        'Identity rows another writer set; the merge leaves them alone' as description,
        count(*) as station_rows
    from identity_rows
    where not {{ is_project_row('identity_rows.notes') }}

    union all

    select
        'other_writer_source_rows' as anomaly,
        'Source rows another writer set; never deleted or rewritten' as description,
        count(*) as station_rows
    from source_rows
    where not {{ is_project_row('source_rows.notes') }}

),

final as (

    select * from counts

)

select * from final
