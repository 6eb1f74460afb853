{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- compilation_track_artist link columns the write-back updates: only the four link
-- columns, only on credit rows no librarian linked, only where a value changes. An
-- existing position is never overwritten.
with

matches as (

    select * from {{ ref('int_compilation__track_matches') }}

),

proposed as (

    select
        cta_id as id,
        track_artist_id,
        link_confidence as track_artist_link_confidence,
        'lml_backfill'::text as track_artist_link_method,
        coalesce(current_track_position, offered_position)::varchar(20) as track_position,
        current_track_artist_id,
        current_link_confidence,
        current_link_method,
        current_track_position
    from matches
    where cta_id is not null and not is_librarian_linked

),

final as (

    select
        id,
        track_artist_id,
        track_artist_link_confidence,
        track_artist_link_method,
        track_position,
        current_track_position is null and track_position is not null as writes_position
    from proposed
    where (track_artist_id, track_artist_link_confidence, track_artist_link_method, track_position)
        is distinct from
        (current_track_artist_id, current_link_confidence, current_link_method, current_track_position)

)

select * from final
