{#- True when a station table has the column. Older station databases may lack
    optional columns (declared `optional` in the sources file); models then read NULL
    and the hooks that keep the column in step do nothing. At parse time the answer
    is assumed true. -#}
{% macro station_column_exists(table_name, column_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(
        database=target.database, schema='wxyc_schema', identifier=table_name) -%}
    {%- if relation is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower == column_name | lower -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
