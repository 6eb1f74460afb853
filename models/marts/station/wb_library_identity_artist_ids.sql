{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- The project's record of all six artist-level ids of each identity row written. A
-- verdict without an id never wipes a known one.
{%- set id_columns = var('artist_id_columns') %}
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

stored as (

    select * from {{ ref('stg_loader__library_identity_artist_ids') }}

),

final as (

    select
        desired.library_id,
        {% for column in id_columns -%}
            coalesce(desired.{{ column }}, stored.{{ column }}) as {{ column }},
        {% endfor -%}
        desired.method,
        desired.confidence,
        desired.attempted_at as last_verified_at,
        desired.verdict_id,
        desired.run_id
    from desired
    left join stored on desired.library_id = stored.library_id
    where desired.is_written

)

select * from final
