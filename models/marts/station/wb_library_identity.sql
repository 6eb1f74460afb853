{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- library_identity rows the write-back inserts or updates: one per library row whose
-- newest mergeable verdict is newer than its stored row, where the row is the
-- project's (or absent).
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

final as (

    select
        library_id,
        station_discogs_master_id as discogs_master_id,
        station_discogs_release_id as discogs_release_id,
        station_musicbrainz_release_group_mbid as musicbrainz_release_group_mbid,
        station_musicbrainz_release_mbid as musicbrainz_release_mbid,
        station_musicbrainz_recording_mbid as musicbrainz_recording_mbid,
        station_wikidata_qid as wikidata_qid,
        station_spotify_id as spotify_id,
        station_apple_music_id as apple_music_id,
        -- Database time: when the verdict landed.
        attempted_at as last_verified_at,
        method,
        confidence,
        agreement_sources,
        notes,
        verdict_id,
        run_id
    from desired
    where is_written

)

select * from final
