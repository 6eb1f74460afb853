-- What needs a person now, one row per alert that holds today: rotation handles LML no
-- longer knows (the latest refresh answered not_found for a handle an active row still
-- holds), the station's identity gate failing, a job whose latest run failed or was
-- interrupted, and the latest merge's compilation_cta_match_gap. The page words them.
with

rotation as (

    select * from {{ ref('stg_station__rotation') }}

),

refresh_results as (

    select * from {{ ref('stg_loader__rotation_refresh_results') }}

),

gate as (

    select * from {{ ref('library_identity_gate') }}

),

runs as (

    select * from {{ ref('stg_loader__runs') }}

),

latest_refresh as (

    select distinct on (identity_id)
        identity_id,
        status,
        refreshed_at
    from refresh_results
    order by identity_id asc, refreshed_at desc, result_id desc

),

handles as (

    select
        count(*) filter (where latest_refresh.status = 'not_found') as stale,
        count(*) as held,
        max(latest_refresh.refreshed_at) filter (where latest_refresh.status = 'not_found')
            as observed_at
    from rotation
    left join latest_refresh on rotation.lml_identity_id = latest_refresh.identity_id
    where rotation.is_active and rotation.lml_identity_id is not null

),

latest_runs as (

    select distinct on (job)
        job,
        run_id,
        status,
        coalesce(finished_at, started_at) as observed_at,
        error,
        counters -> 'merge' as merge_counters
    from runs
    where status <> 'running'
    order by job asc, started_at desc

),

latest_merge as (

    select
        run_id,
        observed_at,
        coalesce((merge_counters ->> 'compilation_track_rows_skipped_no_cta_match')::bigint, 0)
            as missed,
        coalesce((merge_counters ->> 'compilation_track_keys')::bigint, 0) as track_keys
    from latest_runs
    where job = 'resolve'

),

alerts as (

    select
        'stale_rotation_handles' as alert,
        null::text as job,
        handles.stale as subject_rows,
        handles.held as of_rows,
        null::bigint as threshold,
        null::text as detail,
        handles.observed_at
    from handles
    where handles.stale > 0

    union all

    select
        'identity_gate' as alert,
        null::text as job,
        gate.truly_unresolved_rows as subject_rows,
        gate.total_library_rows as of_rows,
        gate.max_truly_unresolved_rows as threshold,
        null::text as detail,
        null::timestamptz as observed_at
    from gate
    where gate.gate_status <> 'PASS'

    union all

    select
        'last_run_' || latest_runs.status as alert,
        latest_runs.job,
        null::bigint as subject_rows,
        null::bigint as of_rows,
        null::bigint as threshold,
        latest_runs.error as detail,
        latest_runs.observed_at
    from latest_runs
    where latest_runs.status in ('failed', 'interrupted', 'gate_failed')

    union all

    select
        'cta_match_gap' as alert,
        'resolve' as job,
        latest_merge.missed as subject_rows,
        latest_merge.track_keys as of_rows,
        {{ var('cta_match_gap_min_keys') }}::bigint as threshold,
        null::text as detail,
        latest_merge.observed_at
    from latest_merge
    where
        latest_merge.missed >= {{ var('cta_match_gap_min_keys') }}
        and 2 * latest_merge.missed >= latest_merge.track_keys
        and latest_merge.track_keys > 0

),

final as (

    select
        alert,
        job,
        subject_rows::bigint as subject_rows,
        of_rows::bigint as of_rows,
        threshold,
        detail,
        observed_at,
        case
            when alert = 'identity_gate' then 1
            when alert like 'last_run_%' then 2
            when alert = 'stale_rotation_handles' then 3
            else 4
        end as alert_order
    from alerts

)

select * from final
