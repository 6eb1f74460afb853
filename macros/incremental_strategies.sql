{#- An incremental strategy that runs on PostgreSQL 14 (no MERGE) and writes only what
    changed, so a second run with the same input touches no row. -#}

{% macro _strategy_columns(relation) -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do names.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{% macro _strategy_keys(unique_key) -%}
    {%- set keys = [unique_key] if unique_key is string else (unique_key or []) -%}
    {%- if keys | length == 0 -%}
        {{ exceptions.raise_compiler_error("this incremental strategy needs a unique_key") }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for key in keys -%}
        {%- do quoted.append(adapter.quote(key)) -%}
    {%- endfor -%}
    {{ return(quoted) }}
{%- endmacro %}

{#- "a.x, a.y" for a list of columns and a prefix. -#}
{% macro _prefixed(columns, prefix) -%}
    {%- set items = [] -%}
    {%- for column in columns -%}
        {%- do items.append(prefix ~ '.' ~ column) -%}
    {%- endfor -%}
    {{ return(items | join(', ')) }}
{%- endmacro %}

{#- " and p1 and p2" from the model's incremental_predicates (may be empty). -#}
{% macro _predicates(arg_dict) -%}
    {%- set predicates = arg_dict['incremental_predicates'] or [] -%}
    {{ return((' and ' ~ (predicates | join(' and '))) if predicates else '') }}
{%- endmacro %}

{#- INSERT … ON CONFLICT DO UPDATE, updating only rows whose values differ. -#}
{% macro get_incremental_upsert_sql(arg_dict) -%}
    {%- set keys = _strategy_keys(arg_dict['unique_key']) -%}
    {%- set columns = _strategy_columns(arg_dict['temp_relation']) -%}
    {%- set values = columns | reject('in', keys) | list -%}
    {%- set assignments = [] -%}
    {%- for column in values -%}
        {%- do assignments.append(column ~ ' = excluded.' ~ column) -%}
    {%- endfor -%}
    insert into {{ arg_dict['target_relation'] }} as dbt_internal_dest ({{ columns | join(', ') }})
    select {{ columns | join(', ') }}
    from {{ arg_dict['temp_relation'] }}
    {% if values | length == 0 -%}
        on conflict ({{ keys | join(', ') }}) do nothing
    {%- else -%}
        on conflict ({{ keys | join(', ') }}) do update
        set {{ assignments | join(', ') }}
        where
            ({{ _prefixed(values, 'dbt_internal_dest') }})
            is distinct from ({{ _prefixed(values, 'excluded') }}){{ _predicates(arg_dict) }}
    {%- endif %}
{%- endmacro %}
