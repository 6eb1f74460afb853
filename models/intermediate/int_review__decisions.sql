{{ config(tags=['merge']) }}
-- The decision in force for each library row a person decided on: the latest one. A
-- later decision replaces an earlier one (a `set` lifts a `reject`).
with

decisions as (

    select * from {{ ref('stg_loader__review_decisions') }}

),

ranked as (

    select
        *,
        row_number() over (partition by library_id order by decision_id desc) as recency
    from decisions

),

final as (

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
        applied_at,
        -- The station's notes of the row a decision writes: a librarian's, never the
        -- consumer's.
        '{{ var("review_notes_prefix") }} ' || decided_by
        || ' ' || to_char(decided_at at time zone 'UTC', 'YYYY-MM-DD')
        || coalesce(': ' || nullif(note, ''), '') as station_notes
    from ranked
    where recency = 1

)

select * from final
