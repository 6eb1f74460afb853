-- The source rows a `set` decision writes: one per source the person gave an id for
-- (Discogs: the release id, else the master id; MusicBrainz: the release group, else the
-- release), as the librarian's rows. Sources the decision does not name are deleted by
-- the write-back, like every source row of a rejected identity (only the project's or a
-- librarian's decision's rows).
with

decided as (

    select * from {{ ref('wb_review_identity') }}

),

offered as (

    select
        decided.library_id,
        sources.source,
        sources.external_id,
        'manual' as method,
        1.0::real as confidence,
        decided.last_verified_at,
        null::text as boost_sources,
        decided.notes
    from decided
    cross join
        lateral (
            values
            ('discogs', coalesce(decided.discogs_release_id, decided.discogs_master_id)::text),
            ('musicbrainz', coalesce(
                decided.musicbrainz_release_group_mbid, decided.musicbrainz_release_mbid
            )::text),
            ('wikidata', decided.wikidata_qid),
            ('spotify', decided.spotify_id),
            ('apple_music', decided.apple_music_id)
        ) as sources (source, external_id)
    where decided.decision = 'set' and sources.external_id is not null

),

final as (

    select * from offered

)

select * from final
