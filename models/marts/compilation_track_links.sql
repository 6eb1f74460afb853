{{
    config(
        materialized='incremental',
        schema='wxyc_schema',
        alias='compilation_track_artist',
        incremental_strategy='update_only',
        unique_key='id',
        incremental_predicates=[
            "dbt_internal_dest.track_artist_link_method is distinct from 'librarian'"
        ],
        full_refresh=false,
        on_schema_change='append_new_columns',
        tags=['merge'],
        pre_hook="{{ require_existing_table() }}",
        post_hook=[{"sql": "{{ analyze_if_owner(this) }}", "transaction": false}],
    )
}}
-- Post-hook: ANALYZE after the bulk write (station rule).
-- Links compilation credits to catalogue artists from the latest usable compilation
-- verdict. Updates existing credit rows only; rows a librarian linked are never
-- touched and rows whose values would not change are not selected.
with

matches as (

    select * from {{ ref('int_compilation__track_matches') }}

),

proposed as (

    select
        cta_id as id,
        library_id,
        track_artist_id,
        link_confidence as track_artist_link_confidence,
        'lml_backfill'::text as track_artist_link_method,
        -- An existing position is never overwritten.
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
        library_id,
        track_artist_id,
        track_artist_link_confidence,
        track_artist_link_method,
        track_position
    from proposed
    where (track_artist_id, track_artist_link_confidence, track_artist_link_method, track_position)
        is distinct from
        (current_track_artist_id, current_link_confidence, current_link_method, current_track_position)

)

select * from final
