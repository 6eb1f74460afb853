-- depends_on: {{ ref('library_identity_source') }}
-- Every library_identity row has at least one library_identity_source row.
{{ config(tags=['gate']) }}

select identity_rows.library_id
from {{ ref('library_identity') }} as identity_rows
where not exists (
        select 1
        from {{ ref('library_identity_source') }} as source_rows
        where source_rows.library_id = identity_rows.library_id
    )
