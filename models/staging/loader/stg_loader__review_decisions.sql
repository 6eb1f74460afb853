with

decisions as (

    select * from {{ source('loader', 'review_decisions') }}

),

renamed as (

    select
        decision_id,
        library_id,
        decision,
        discogs_release_id,
        discogs_master_id,
        musicbrainz_release_group_mbid,
        musicbrainz_release_mbid,
        wikidata_qid,
        spotify_id,
        apple_music_id,
        note,
        decided_by,
        decided_at,
        applied_at
    from decisions

)

select * from renamed
