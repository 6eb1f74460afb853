-- Pre-existing anomaly, reported and never failing a run: station identity rows
-- without any source row (e.g. old compilation rows no writer maintains).
{{ config(tags=['gate'], severity='warn') }}

select
    identity_rows.library_id,
    identity_rows.notes
from {{ ref('stg_station__library_identity') }} as identity_rows
where not exists (
        select 1
        from {{ ref('stg_station__library_identity_source') }} as source_rows
        where source_rows.library_id = identity_rows.library_id
    )
