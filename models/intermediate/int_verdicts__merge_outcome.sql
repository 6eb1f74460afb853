-- What became of every landed verdict: merged, or skipped with a reason. A
-- single_artist verdict that should have been merged but is not reflected in the
-- station's library_identity is 'pending' (the merge has not run, or failed).
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),

single_artist as (

    select * from {{ ref('int_verdicts__single_artist_checked') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

classified as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.kind,
        verdicts.attempted_at,
        case
            when verdicts.kind = 'single_artist'
                then
                    case
                        when single_artist.skip_reason is not null then single_artist.skip_reason
                        when single_artist.mergeable_rank > 1 then 'superseded'
                        when station_identity.last_verified_at = verdicts.attempted_at then 'merged'
                        -- The station row was verified later than this verdict (e.g. by
                        -- another writer): the newer identity stands.
                        when station_identity.last_verified_at > verdicts.attempted_at
                            then 'superseded_by_newer_identity'
                        else 'pending'
                    end
            when library.library_id is null then 'library_row_missing'
            when verdicts.kind = 'unresolved' then 'recorded_unresolved'
            when verdicts.kind = 'compilation' and verdicts.tracks_counted then 'compilation_linked'
            when verdicts.kind = 'compilation' then 'tracks_not_attempted'
            else 'unknown_kind'
        end as reason
    from verdicts
    left join library on verdicts.library_id = library.library_id
    left join single_artist on verdicts.verdict_id = single_artist.verdict_id
    left join station_identity on verdicts.library_id = station_identity.library_id

),

final as (

    select
        verdict_id,
        run_id,
        library_id,
        kind,
        attempted_at,
        case
            when reason in ('merged', 'recorded_unresolved', 'compilation_linked') then 'merged'
            when reason = 'pending' then 'pending'
            else 'skipped'
        end as outcome,
        reason
    from classified

)

select * from final
