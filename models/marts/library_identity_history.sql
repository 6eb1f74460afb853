{{
    config(
        materialized='incremental',
        schema='wxyc_schema',
        alias='library_identity_history',
        incremental_strategy='insert_only',
        full_refresh=false,
        on_schema_change='append_new_columns',
        tags=['merge'],
        pre_hook="{{ require_existing_table() }}",
    )
}}
-- Runs before library_identity: archives each station row that the coming verdict
-- changes (an id replaced, or the method). The reason names the verdict, so the
-- same supersession is never archived twice.
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

archived as (

    select * from {{ ref('stg_station__library_identity_history') }}

),

superseded as (

    select
        library_id,
        current_discogs_master_id as discogs_master_id,
        current_discogs_release_id as discogs_release_id,
        current_musicbrainz_release_group_mbid as musicbrainz_release_group_mbid,
        current_musicbrainz_release_mbid as musicbrainz_release_mbid,
        current_musicbrainz_recording_mbid as musicbrainz_recording_mbid,
        current_wikidata_qid as wikidata_qid,
        current_spotify_id as spotify_id,
        current_apple_music_id as apple_music_id,
        current_last_verified_at as last_verified_at,
        current_method as method,
        current_confidence as confidence,
        current_agreement_sources as agreement_sources,
        current_notes as notes,
        superseded_reason,
        reason_category
    from desired
    where superseded_reason is not null

),

final as (

    select superseded.*
    from superseded
    where not exists (
            select 1
            from archived
            where
                archived.library_id = superseded.library_id
                and archived.superseded_reason = superseded.superseded_reason
        )

)

select * from final
