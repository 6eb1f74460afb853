-- Everything the merge did not write, one row per skipped item, for per-run counts:
-- verdicts (out of band, superseded, ...), provenance entries (null external_id or
-- confidence, ...) and compilation track entries (no credit row, librarian, ...).
with

outcomes as (

    select * from {{ ref('int_verdicts__merge_outcome') }}

),

provenance as (

    select * from {{ ref('int_verdicts__provenance_checked') }}

),

tracks as (

    select * from {{ ref('int_compilation__track_matches') }}

),

verdict_skips as (

    select
        run_id,
        verdict_id,
        library_id,
        'verdict' as skip_level,
        reason,
        kind as detail
    from outcomes
    where outcome = 'skipped'

),

provenance_skips as (

    select
        run_id,
        verdict_id,
        library_id,
        'provenance' as skip_level,
        skip_reason as reason,
        source as detail
    from provenance
    where skip_reason is not null

),

track_skips as (

    select
        tracks.run_id,
        tracks.verdict_id,
        tracks.library_id,
        'track' as skip_level,
        reasons.reason,
        tracks.artist_name || ' / ' || coalesce(tracks.track_title, '') as detail
    from tracks
    cross join
        lateral (
            values
            (tracks.key_skip_reason),
            (case
                when tracks.key_skip_reason is null and tracks.catalogue_match_count <> 1
                    then 'no_catalog_artist'
            end),
            (case
                when tracks.key_skip_reason is null then tracks.position_skip_reason
            end),
            (case
                when tracks.key_skip_reason is null and tracks.offered_confidence is not null
                    and tracks.link_confidence is null
                    then 'confidence_out_of_range'
            end)
        ) as reasons (reason)
    where reasons.reason is not null

),

final as (

    select * from verdict_skips
    union all
    select * from provenance_skips
    union all
    select * from track_skips

)

select * from final
