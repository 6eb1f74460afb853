{#- Validated candidate-selection vars; a bad value stops compilation with a clear
    message instead of silently selecting the wrong rows. -#}
{% macro candidate_mode() -%}
    {%- set mode = var('candidate_mode', 'full') | string | lower | trim -%}
    {%- if mode not in ['full', 'legacy', 'recheck'] -%}
        {{ exceptions.raise_compiler_error(
            "candidate_mode must be one of full, legacy, recheck (got '" ~ var('candidate_mode') ~ "')") }}
    {%- endif -%}
    {{ return(mode) }}
{%- endmacro %}

{#- A day-count var (dbt_project.yml declares each with its default): a whole number of
    days, at least 1, the same range the loader's options allow. -#}
{% macro day_count_var(name) -%}
    {%- set raw = var(name) -%}
    {%- set text = raw | string | trim -%}
    {%- if not text.isdigit() or text | int < 1 -%}
        {{ exceptions.raise_compiler_error(
            name ~ " must be a whole number of days >= 1 (got '" ~ raw ~ "')") }}
    {%- endif -%}
    {{ return(text | int) }}
{%- endmacro %}
