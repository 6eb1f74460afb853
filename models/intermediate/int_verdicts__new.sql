{{
    config(
        materialized='table',
        tags=['merge'],
        indexes=[
            {'columns': ['verdict_id'], 'unique': true},
            {'columns': ['library_id']},
        ],
    )
}}
-- depends_on: {{ ref('int_merges__watermark') }}
-- The verdicts landed since the last applied merge: the only input of an incremental
-- merge, so its cost follows what is new rather than the size of the log. With var
-- merge_full_rebuild it is the whole log (a replay after a merge rule changes).
{#- The bound is read before the query is planned: as a literal, the planner sees how
    few rows lie beyond it and reads them through the primary key, whatever the size of
    the log. -#}
{%- set merged_through = 0 -%}
{%- if execute -%}
    {%- set merged_through = run_query(
        "select merged_through from " ~ ref('int_merges__watermark')).columns[0].values()[0] -%}
{%- endif %}
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

final as (

    select
        verdicts.*,
        -- The write-back refuses change sets built against another merge state.
        {{ merged_through }}::bigint as merged_through
    from verdicts
    where
        verdicts.verdict_id > {{ merged_through }}
        or {{ var('merge_full_rebuild') }}

)

select * from final
