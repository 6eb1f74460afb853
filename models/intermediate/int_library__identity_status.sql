-- Identity status of every library row, from the raw verdict log, the merges' skips and
-- the station's own state (rows resolved before this tool existed count too). resolved
-- means an identity is stored; a single_artist verdict that left none is merge_skipped.
with

library as (

    select * from {{ ref('stg_station__library') }}

),

cohorts as (

    select * from {{ ref('int_library__cohort') }}

),

latest_verdicts as (

    select * from {{ ref('int_verdicts__latest') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

merge_skipped as (

    select * from {{ ref('int_verdicts__merge_skipped') }}

),

review as (

    select * from {{ ref('int_review__decisions') }}

),

joined as (

    select
        library.library_id,
        library.artist_id,
        library.artist_name,
        library.album_title,
        library.legacy_release_id,
        library.canonical_entity_id,
        library.unresolved_attempted_at,
        cohorts.cohort,
        station_identity.library_id is not null as has_station_identity,
        station_identity.last_verified_at as station_last_verified_at,
        station_identity.method as station_method,
        station_identity.confidence as station_confidence,
        latest_verdicts.latest_verdict_id,
        latest_verdicts.latest_kind,
        latest_verdicts.latest_attempted_at,
        latest_verdicts.latest_is_no_match,
        latest_verdicts.latest_tracks_counted,
        latest_verdicts.last_resolved_verdict_at,
        review.decision as review_decision,
        case
            -- A person rejected the identity: no verdict brings it back.
            when review.decision = 'reject' and latest_verdicts.latest_kind = 'single_artist'
                then 'rejected_by_librarian'
            else {{ verdict_merge_skip_reason(
                'latest_verdicts.latest_kind', 'latest_verdicts.latest_verdict_id',
                'merge_skipped.reason', 'station_identity.library_id is not null') }}
        end as merge_skip_reason
    from library
    inner join cohorts on library.library_id = cohorts.library_id
    left join latest_verdicts on library.library_id = latest_verdicts.library_id
    left join station_identity on library.library_id = station_identity.library_id
    left join merge_skipped on latest_verdicts.latest_verdict_id = merge_skipped.verdict_id
    left join review on library.library_id = review.library_id

),

final as (

    select
        library_id,
        artist_id,
        artist_name,
        album_title,
        legacy_release_id,
        canonical_entity_id,
        cohort,
        case
            -- A person's identity (library-identity review) stands whatever LML said.
            when review_decision in ('accept', 'set') and has_station_identity then 'resolved'
            when latest_kind is not null
                then {{ verdict_state('latest_kind', 'latest_tracks_counted', 'merge_skip_reason') }}
            when has_station_identity then 'resolved'
            when unresolved_attempted_at is not null then 'unresolved'
            else 'never_attempted'
        end as status,
        case
            when not coalesce(review_decision in ('accept', 'set') and has_station_identity, false)
                then merge_skip_reason
        end as merge_skip_reason,
        review_decision,
        has_station_identity,
        station_last_verified_at,
        station_method,
        station_confidence,
        unresolved_attempted_at,
        latest_verdict_id,
        latest_kind,
        latest_attempted_at,
        -- greatest() skips NULLs, so either side alone is enough.
        greatest(station_last_verified_at, last_resolved_verdict_at) as last_resolved_at,
        greatest(latest_attempted_at, unresolved_attempted_at) as last_attempt_at,
        -- Database time, once per statement: every age is measured from it.
        now() as evaluated_at
    from joined

)

select * from final
