with

history as (

    select * from {{ source('station', 'library_identity_history') }}

),

renamed as (

    select
        history_id,
        library_id,
        discogs_master_id,
        discogs_release_id,
        musicbrainz_release_group_mbid,
        musicbrainz_release_mbid,
        musicbrainz_recording_mbid,
        wikidata_qid,
        spotify_id,
        apple_music_id,
        last_verified_at,
        method,
        confidence,
        agreement_sources,
        notes,
        superseded_at,
        superseded_reason,
        reason_category,
        archived_at
    from history

)

select * from renamed
