-- The latest verdict of each library row, plus when it last resolved.
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

latest as (

    -- Served by raw_verdicts_library_latest_idx (library_id, attempted_at desc, verdict_id desc).
    select distinct on (library_id)
        library_id,
        verdict_id,
        run_id,
        kind,
        attempted_at,
        tracks_counted
    from verdicts
    order by library_id asc, attempted_at desc, verdict_id desc

),

resolved as (

    select
        library_id,
        max(attempted_at) as last_resolved_verdict_at
    from verdicts
    where kind = 'single_artist' or (kind = 'compilation' and tracks_counted)
    group by library_id

),

final as (

    select
        latest.library_id,
        latest.verdict_id as latest_verdict_id,
        latest.run_id as latest_run_id,
        latest.kind as latest_kind,
        latest.attempted_at as latest_attempted_at,
        latest.tracks_counted as latest_tracks_counted,
        -- LML had no match: unresolved, or a compilation whose tracks were not attempted.
        (
            latest.kind = 'unresolved'
            or (latest.kind = 'compilation' and not latest.tracks_counted)
        ) as latest_is_no_match,
        resolved.last_resolved_verdict_at
    from latest
    left join resolved on latest.library_id = resolved.library_id

)

select * from final
