{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- library_identity_history rows the write-back inserts: a snapshot of each stored row
-- that the coming verdict changes (a replaced id, or the method). verdict_id and run_id
-- are not station columns: the write-back links each inserted row to them in
-- identity_loader.merge_history.
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

final as (

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
        reason_category,
        verdict_id,
        run_id
    from desired
    where superseded_reason is not null

)

select * from final
