-- Gate on the remaining change sets: history rows, compilation links, no-match stamps,
-- artist ids and skips, each keyed once and with the values their tables accept.
with

history_rows as (

    select * from {{ ref('wb_library_identity_history') }}

),

link_rows as (

    select * from {{ ref('wb_compilation_track_artist') }}

),

stamp_rows as (

    select * from {{ ref('wb_library_stamps') }}

),

artist_id_rows as (

    select * from {{ ref('wb_library_identity_artist_ids') }}

),

skip_rows as (

    select * from {{ ref('wb_merge_skips') }}

),

problems as (

    select
        'history' as change_set,
        library_id::bigint as row_key,
        case
            when count(*) over (partition by library_id) > 1 then 'library_id repeats'
            when superseded_reason is null then 'superseded_reason is null'
            when reason_category not in ('id_changed', 'method_changed') then 'unknown category'
        end as problem
    from history_rows

    union all

    select
        'compilation_track_artist' as change_set,
        id::bigint as row_key,
        case
            when id is null then 'id is null'
            when count(*) over (partition by id) > 1 then 'id repeats'
            when coalesce(track_artist_link_method, '') <> 'lml_backfill' then 'not lml_backfill'
            when not coalesce(track_artist_link_confidence between 0 and 1, true)
                then 'confidence outside 0..1'
            when length(track_position) > 20 then 'track_position too long'
        end as problem
    from link_rows

    union all

    select
        'library_stamps' as change_set,
        library_id::bigint as row_key,
        case
            when count(*) over (partition by library_id) > 1 then 'library_id repeats'
            when unresolved_attempted_at is null then 'stamp is null'
        end as problem
    from stamp_rows

    union all

    select
        'artist_ids' as change_set,
        library_id::bigint as row_key,
        case when count(*) over (partition by library_id) > 1 then 'library_id repeats' end
            as problem
    from artist_id_rows

    union all

    select
        'merge_skips' as change_set,
        library_id::bigint as row_key,
        case
            when skip_level not in ('verdict', 'provenance', 'track') then 'unknown level'
            when reason is null then 'reason is null'
        end as problem
    from skip_rows

)

select * from problems
where problem is not null
