{{ config(materialized='table') }}
-- The latest verdict of each library row, plus when it last resolved. One sort over
-- the log (a table: the candidates, the status and the merge's post-hook all read it).
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

latest as (

    select distinct on (library_id)
        library_id,
        verdict_id,
        run_id,
        kind,
        attempted_at,
        tracks_counted,
        max(attempted_at) filter (
            where kind = 'single_artist' or (kind = 'compilation' and tracks_counted)
        ) over (partition by library_id) as last_resolved_verdict_at
    from verdicts
    order by library_id asc, attempted_at desc, verdict_id desc

),

final as (

    select
        library_id,
        verdict_id as latest_verdict_id,
        run_id as latest_run_id,
        kind as latest_kind,
        attempted_at as latest_attempted_at,
        tracks_counted as latest_tracks_counted,
        -- LML had no match: unresolved, or a compilation whose tracks were not attempted.
        (kind = 'unresolved' or (kind = 'compilation' and not tracks_counted)) as latest_is_no_match,
        last_resolved_verdict_at
    from latest

)

select * from final
