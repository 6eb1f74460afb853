-- Gate on the identity rows the write-back is about to write: every one keeps
-- at least one source row (written now, or stored already and not deleted).
select written.library_id
from {{ ref('wb_library_identity') }} as written
where
    not exists (
        select 1
        from {{ ref('wb_library_identity_source') }} as offered
        where offered.library_id = written.library_id
    )
    and not exists (
        select 1
        from {{ ref('stg_station__library_identity_source') }} as kept
        where
            kept.library_id = written.library_id
            and not exists (
                select 1
                from {{ ref('wb_library_identity_source_deletes') }} as gone
                where gone.library_id = kept.library_id and gone.source = kept.source
            )
    )
