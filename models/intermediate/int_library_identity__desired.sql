-- The identity each library row should have: its latest mergeable single_artist
-- verdict, laid over the station's current row so that no known id is wiped.
with

checked as (

    select * from {{ ref('int_verdicts__single_artist_checked') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

mergeable as (

    select
        *,
        -- The previous mergeable verdict's artist-level ids, to name explicit changes
        -- of ids that the station table has no column for.
        lag(discogs_artist_id) over by_time as prior_discogs_artist_id,
        lag(musicbrainz_artist_id) over by_time as prior_musicbrainz_artist_id,
        lag(bandcamp_id) over by_time as prior_bandcamp_id
    from checked
    where is_mergeable
    window by_time as (partition by library_id order by attempted_at asc, verdict_id asc)

),

latest as (

    select * from mergeable
    where mergeable_rank = 1

),

laid_over as (

    select
        latest.library_id,
        latest.verdict_id,
        latest.run_id,
        latest.attempted_at,
        latest.method,
        latest.confidence::real as confidence,
        latest.usable_sources,
        -- Station defect #3: record which sources agreed.
        case
            when latest.method = 'cross_source_agreement' then latest.usable_sources
        end as agreement_sources,
        '{{ var("identity_notes") }}'::text as notes,
        latest.discogs_artist_id,
        latest.musicbrainz_artist_id,
        latest.wikidata_qid,
        latest.spotify_artist_id,
        latest.apple_music_artist_id,
        latest.bandcamp_id,
        latest.prior_discogs_artist_id,
        latest.prior_musicbrainz_artist_id,
        latest.prior_bandcamp_id,
        -- Release-level ids: the station's value always wins (defect #1).
        coalesce(current_row.discogs_master_id, latest.discogs_master_id) as station_discogs_master_id,
        coalesce(current_row.discogs_release_id, latest.discogs_release_id) as station_discogs_release_id,
        coalesce(current_row.musicbrainz_release_group_mbid, latest.musicbrainz_release_group_mbid)
            as station_musicbrainz_release_group_mbid,
        coalesce(current_row.musicbrainz_release_mbid, latest.musicbrainz_release_mbid)
            as station_musicbrainz_release_mbid,
        coalesce(current_row.musicbrainz_recording_mbid, latest.musicbrainz_recording_mbid)
            as station_musicbrainz_recording_mbid,
        -- Artist-level ids: a new value replaces the old one, a missing one never wipes it.
        coalesce(latest.wikidata_qid, current_row.wikidata_qid) as station_wikidata_qid,
        coalesce(latest.spotify_artist_id, current_row.spotify_id) as station_spotify_id,
        coalesce(latest.apple_music_artist_id, current_row.apple_music_id) as station_apple_music_id,
        current_row.library_id is not null as has_current,
        current_row.library_id is null
        or latest.attempted_at > current_row.last_verified_at as is_newer,
        current_row.discogs_master_id as current_discogs_master_id,
        current_row.discogs_release_id as current_discogs_release_id,
        current_row.musicbrainz_release_group_mbid as current_musicbrainz_release_group_mbid,
        current_row.musicbrainz_release_mbid as current_musicbrainz_release_mbid,
        current_row.musicbrainz_recording_mbid as current_musicbrainz_recording_mbid,
        current_row.wikidata_qid as current_wikidata_qid,
        current_row.spotify_id as current_spotify_id,
        current_row.apple_music_id as current_apple_music_id,
        current_row.last_verified_at as current_last_verified_at,
        current_row.method as current_method,
        current_row.confidence as current_confidence,
        current_row.agreement_sources as current_agreement_sources,
        current_row.notes as current_notes
    from latest
    left join station_identity as current_row on latest.library_id = current_row.library_id

),

changes as (

    select
        *,
        nullif(concat_ws(
            '; ',
            case
                when current_method <> method
                    then 'method ' || current_method || ' -> ' || method
            end,
            case
                when current_wikidata_qid <> wikidata_qid
                    then 'wikidata_qid ' || current_wikidata_qid || ' -> ' || wikidata_qid
            end,
            case
                when current_spotify_id <> spotify_artist_id
                    then 'spotify_id ' || current_spotify_id || ' -> ' || spotify_artist_id
            end,
            case
                when current_apple_music_id <> apple_music_artist_id
                    then 'apple_music_id ' || current_apple_music_id || ' -> ' || apple_music_artist_id
            end,
            case
                when prior_discogs_artist_id <> discogs_artist_id
                    then 'discogs_artist_id ' || prior_discogs_artist_id || ' -> ' || discogs_artist_id
            end,
            case
                when prior_musicbrainz_artist_id <> musicbrainz_artist_id
                    then 'musicbrainz_artist_id ' || prior_musicbrainz_artist_id || ' -> ' || musicbrainz_artist_id
            end,
            case
                when prior_bandcamp_id <> bandcamp_id
                    then 'bandcamp_id ' || prior_bandcamp_id || ' -> ' || bandcamp_id
            end
        ), '') as change_summary,
        (
            current_wikidata_qid <> wikidata_qid
            or current_spotify_id <> spotify_artist_id
            or current_apple_music_id <> apple_music_artist_id
            or prior_discogs_artist_id <> discogs_artist_id
            or prior_musicbrainz_artist_id <> musicbrainz_artist_id
            or prior_bandcamp_id <> bandcamp_id
        ) is true as has_id_change
    from laid_over

),

final as (

    select
        *,
        case
            when has_current and is_newer and change_summary is not null
                then 'verdict ' || verdict_id || ' (run ' || run_id || '): ' || change_summary
        end as superseded_reason,
        case
            when not (has_current and is_newer and change_summary is not null) then null
            when has_id_change then 'id_changed'
            else 'method_changed'
        end as reason_category
    from changes

)

select * from final
