-- One row per resolve run from identity_loader.runs: when, how it ended, its counters
-- (total cohort), and the library's state after it: today's status counts minus the
-- changes later runs made (rpt_verdict_transitions). The latest run therefore agrees
-- with rpt_library_coverage exactly; earlier runs are as exact as the station's data
-- before each row's first verdict allows. The compilation counters are the run's merge's
-- (counters.merge, NULL when the run merged nothing).
{%- set states = ['resolved', 'compilation', 'unresolved', 'merge_skipped', 'never_attempted'] %}
{%- set compilation_counters = [
    'compilation_track_rows_written', 'compilation_track_rows_skipped_unchanged',
    'compilation_track_rows_skipped_librarian', 'compilation_track_rows_skipped_no_cta_match',
    'compilation_track_rows_skipped_no_catalog_artist', 'compilation_track_position_rows_written',
    'compilation_track_position_rows_skipped_ambiguous', 'compilation_track_keys'] %}

with

runs as (

    select * from {{ ref('stg_loader__runs') }}

),

transitions as (

    select * from {{ ref('rpt_verdict_transitions') }}

),

status as (

    select * from {{ ref('int_library__identity_status') }}

),

current_states as (

    select
        {% for state in states -%}
            count(*) filter (where status = '{{ state }}') as {{ state }}_now,
        {% endfor -%}
        count(*) as library_rows
    from status

),

deltas as (

    select
        run_id,
        {% for state in states -%}
            count(*) filter (where state_after = '{{ state }}')
            - count(*) filter (where state_before = '{{ state }}') as {{ state }}_delta,
        {% endfor -%}
        count(*) as verdicts
    from transitions
    group by run_id

),

skipped as (

    -- Sum of the run's skip buckets, whatever buckets it recorded.
    select
        runs.run_id,
        sum(buckets.value::bigint) as rows_skipped
    from runs
    cross join
        lateral jsonb_each_text(
            case
                when jsonb_typeof(runs.counters -> 'total' -> 'rows_skipped') = 'object'
                    then runs.counters -> 'total' -> 'rows_skipped'
                else '{}'::jsonb
            end
        ) as buckets (key, value)
    group by runs.run_id

),

resolve_runs as (

    select
        runs.run_id,
        runs.mode,
        runs.status,
        runs.started_at,
        runs.finished_at,
        (runs.counters -> 'total' ->> 'scanned')::bigint as scanned,
        (runs.counters -> 'total' ->> 'rows_resolved')::bigint as resolved,
        (runs.counters -> 'total' ->> 'rows_resolved_compilation')::bigint as resolved_compilation,
        (runs.counters -> 'total' ->> 'rows_unresolved')::bigint as unresolved,
        skipped.rows_skipped as skipped,
        (runs.counters -> 'total' ->> 'lml_total_calls')::bigint as lml_calls,
        {% for counter in compilation_counters -%}
            (runs.counters -> 'merge' ->> '{{ counter }}')::bigint as {{ counter }},
        {% endfor -%}
        coalesce(deltas.verdicts, 0) as verdicts,
        {% for state in states -%}
            -- Changes still to come after this run (later runs' deltas).
            coalesce(sum(deltas.{{ state }}_delta) over later_runs, 0) as {{ state }}_to_come,
        {% endfor -%}
        row_number() over by_start as run_number
    from runs
    left join deltas on runs.run_id = deltas.run_id
    left join skipped on runs.run_id = skipped.run_id
    where runs.job = 'resolve'
    window
        by_start as (order by runs.started_at asc, runs.run_id asc),
        later_runs as (
            order by runs.started_at asc, runs.run_id asc
            rows between 1 following and unbounded following
        )

),

final as (

    select
        resolve_runs.run_id,
        resolve_runs.run_number,
        resolve_runs.mode,
        resolve_runs.status,
        resolve_runs.started_at,
        resolve_runs.finished_at,
        round(extract(epoch from resolve_runs.finished_at - resolve_runs.started_at), 1)
            as duration_s,
        resolve_runs.scanned,
        resolve_runs.resolved,
        resolve_runs.resolved_compilation,
        resolve_runs.unresolved,
        resolve_runs.skipped,
        resolve_runs.lml_calls,
        {% for counter in compilation_counters -%}
            resolve_runs.{{ counter }},
        {% endfor -%}
        resolve_runs.verdicts,
        current_states.library_rows,
        {% for state in states -%}
            current_states.{{ state }}_now - resolve_runs.{{ state }}_to_come as {{ state }}_after,
        {% endfor -%}
        round(
            100.0 * (
                current_states.resolved_now - resolve_runs.resolved_to_come
                + current_states.compilation_now - resolve_runs.compilation_to_come
            ) / nullif(current_states.library_rows, 0), 2
        ) as covered_pct_after,
        round(
            100.0 * (
                current_states.library_rows
                - current_states.never_attempted_now + resolve_runs.never_attempted_to_come
            ) / nullif(current_states.library_rows, 0), 2
        ) as attempted_pct_after
    from resolve_runs
    cross join current_states

)

select * from final
