-- Gate on the identity rows the write-back is about to write: one row per library row,
-- every required value present, a known method, a confidence in its method's band, and
-- the project's notes. A returned row names the problem.
with

written as (

    select * from {{ ref('wb_library_identity') }}

),

problems as (

    select
        library_id,
        case
            when library_id is null then 'library_id is null'
            when count(*) over (partition by library_id) > 1 then 'library_id repeats'
            when last_verified_at is null then 'last_verified_at is null'
            when not {{ is_known_identity_method('method') }} then 'unknown method'
            when not {{ confidence_in_method_band('method', 'confidence') }}
                then 'confidence outside the method band'
            when coalesce(notes, '') <> '{{ var("identity_notes") }}' then 'not the project notes'
        end as problem
    from written

)

select * from problems
where problem is not null
