-- Identity churn per resolve run: of the library rows the run landed a verdict for, how
-- many gained coverage (appeared), lost it (disappeared), kept it with another identity
-- or kind (changed) or the same one (unchanged), or had none before or after
-- (not_covered). history_archived counts the station history rows the merges archived
-- for the run's verdicts (identity_loader.merge_history).
with

runs as (

    select * from {{ ref('stg_loader__runs') }}

),

transitions as (

    select * from {{ ref('rpt_verdict_transitions') }}

),

merge_history as (

    select * from {{ ref('stg_loader__merge_history') }}

),

per_run as (

    select
        run_id,
        count(*) as verdicts,
        count(*) filter (where is_first_attempt) as first_attempts,
        count(*) filter (where transition = 'appeared') as appeared,
        count(*) filter (where transition = 'changed') as changed,
        count(*) filter (where transition = 'unchanged') as unchanged,
        count(*) filter (where transition = 'disappeared') as disappeared,
        count(*) filter (where transition = 'not_covered') as not_covered
    from transitions
    group by run_id

),

archived as (

    select
        run_id,
        count(*) as history_archived
    from merge_history
    group by run_id

),

final as (

    select
        runs.run_id,
        row_number() over (order by runs.started_at asc, runs.run_id asc) as run_number,
        runs.mode,
        runs.status,
        runs.started_at,
        coalesce(per_run.verdicts, 0) as verdicts,
        coalesce(per_run.first_attempts, 0) as first_attempts,
        coalesce(per_run.appeared, 0) as appeared,
        coalesce(per_run.changed, 0) as changed,
        coalesce(per_run.unchanged, 0) as unchanged,
        coalesce(per_run.disappeared, 0) as disappeared,
        coalesce(per_run.not_covered, 0) as not_covered,
        coalesce(per_run.appeared, 0) - coalesce(per_run.disappeared, 0) as net_covered_change,
        coalesce(archived.history_archived, 0) as history_archived
    from runs
    left join per_run on runs.run_id = per_run.run_id
    left join archived on runs.run_id = archived.run_id
    where runs.job = 'resolve'

)

select * from final
