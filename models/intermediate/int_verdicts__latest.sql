{{
    config(
        materialized='incremental',
        incremental_strategy='upsert',
        unique_key='library_id',
        on_schema_change='fail',
        tags=['merge'],
        indexes=[{'columns': ['library_id'], 'unique': true}],
    )
}}
-- The latest verdict of each library row, plus when it last resolved. Incrementally,
-- only rows with new verdicts are recomputed, from their stored state and the new
-- verdicts; a first build (or --full-refresh) reads the whole log.
{%- set new_verdicts = ref('int_verdicts__new') %}
{%- set all_verdicts = ref('stg_loader__raw_verdicts') %}

with

verdicts as (

    select * from {{ new_verdicts if is_incremental() else all_verdicts }}

),

offered as (

    select
        library_id,
        verdict_id as latest_verdict_id,
        run_id as latest_run_id,
        kind as latest_kind,
        attempted_at as latest_attempted_at,
        tracks_counted as latest_tracks_counted,
        case when {{ verdict_resolves('kind', 'tracks_counted') }} then attempted_at end
            as last_resolved_verdict_at
    from verdicts

    {% if is_incremental() -%}
        union all

        select
            library_id,
            latest_verdict_id,
            latest_run_id,
            latest_kind,
            latest_attempted_at,
            latest_tracks_counted,
            last_resolved_verdict_at
        from {{ this }} as kept
        where kept.library_id in (select verdicts.library_id from verdicts)
    {%- endif %}

),

latest as (

    select distinct on (library_id)
        library_id,
        latest_verdict_id,
        latest_run_id,
        latest_kind,
        latest_attempted_at,
        latest_tracks_counted,
        max(last_resolved_verdict_at) over (partition by library_id) as last_resolved_verdict_at
    from offered
    order by library_id asc, latest_attempted_at desc, latest_verdict_id desc

),

final as (

    select
        library_id,
        latest_verdict_id,
        latest_run_id,
        latest_kind,
        latest_attempted_at,
        latest_tracks_counted,
        not{{ verdict_resolves('latest_kind', 'latest_tracks_counted') }} as latest_is_no_match,
        last_resolved_verdict_at
    from latest

)

select * from final
