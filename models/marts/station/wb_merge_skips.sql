{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- Everything among the new verdicts that the write-back does not write, one row per
-- skipped item with its reason: verdicts (out of band, superseded, another writer's
-- row, ...), provenance entries (null external_id, another writer's source row, ...)
-- and compilation tracks (no credit row, librarian link, ...).
with

new_verdicts as (

    select * from {{ ref('int_verdicts__new') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),

checked as (

    select * from {{ ref('int_verdicts__single_artist_checked') }}

),

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

provenance as (

    select * from {{ ref('int_verdicts__provenance_checked') }}

),

station_sources as (

    select * from {{ ref('stg_station__library_identity_source') }}

),

tracks as (

    select * from {{ ref('int_compilation__track_matches') }}

),

verdict_reasons as (

    select
        new_verdicts.run_id,
        new_verdicts.verdict_id,
        new_verdicts.library_id,
        new_verdicts.kind as detail,
        case
            when new_verdicts.kind = 'single_artist'
                then coalesce(
                        checked.skip_reason,
                        case
                            when checked.mergeable_rank > 1 then 'superseded'
                            -- A later identity is already stored (e.g. by another writer).
                            -- A person decided on the row (library-identity review).
                            when desired.review_decision = 'reject' then 'rejected_by_librarian'
                            when desired.review_decision is not null then 'librarian_decision'
                            when not desired.is_newer then 'superseded_by_newer_identity'
                            when not desired.is_ours then 'other_writer'
                        end
                    )
            when library.library_id is null then 'library_row_missing'
            when new_verdicts.kind = 'compilation' and not new_verdicts.tracks_counted
                then 'tracks_not_attempted'
        end as reason
    from new_verdicts
    left join library on new_verdicts.library_id = library.library_id
    left join checked on new_verdicts.verdict_id = checked.verdict_id
    left join desired on new_verdicts.verdict_id = desired.verdict_id

),

verdict_skips as (

    select
        run_id,
        verdict_id,
        library_id,
        'verdict' as skip_level,
        reason,
        detail
    from verdict_reasons
    where reason is not null

),

provenance_skips as (

    select
        provenance.run_id,
        provenance.verdict_id,
        provenance.library_id,
        'provenance' as skip_level,
        coalesce(provenance.skip_reason, 'other_writer') as reason,
        provenance.source as detail
    from provenance
    left join desired
        on
            provenance.verdict_id = desired.verdict_id
            and desired.is_written
    left join station_sources
        on
            provenance.library_id = station_sources.library_id
            and provenance.source = station_sources.source
    where
        provenance.skip_reason is not null
        or (
            desired.verdict_id is not null and not {{ is_project_row('station_sources.notes') }}
            and station_sources.library_id is not null
        )

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
