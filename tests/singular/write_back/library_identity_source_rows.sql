-- Gate on the source rows the write-back is about to write or delete: one row per
-- (library row, source), only for identity rows it writes, a known source, an external
-- id, and a confidence in 0..1.
with

offered as (

    select * from {{ ref('wb_library_identity_source') }}

),

gone as (

    select * from {{ ref('wb_library_identity_source_deletes') }}

),

written as (

    select * from {{ ref('wb_library_identity') }}

),

offered_problems as (

    select
        offered.library_id,
        offered.source,
        case
            when count(*) over (partition by offered.library_id, offered.source) > 1
                then 'library_id and source repeat'
            when written.library_id is null then 'no identity row written for it'
            when not {{ is_known_identity_source('offered.source') }} then 'unknown source'
            when offered.external_id is null then 'external_id is null'
            when not coalesce(offered.confidence between 0 and 1, false)
                then 'confidence outside 0..1'
        end as problem
    from offered
    left join written on offered.library_id = written.library_id

),

deletion_problems as (

    select
        library_id,
        source,
        'deleted twice' as problem
    from gone
    group by library_id, source
    having count(*) > 1

),

problems as (

    select * from offered_problems
    union all
    select * from deletion_problems

)

select * from problems
where problem is not null
