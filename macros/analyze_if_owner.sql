{#- ANALYZE after a bulk write (a station rule), but only as the table's owner (or a
    member of the owning role): for anyone else Postgres skips it with a warning, and a
    station's jobs do not own its tables. Renders nothing when the role is not the owner. -#}
{% macro analyze_if_owner(relation) -%}
    {%- if execute -%}
        {%- set result = run_query(
            "select pg_has_role(c.relowner, 'USAGE') from pg_class as c"
            ~ " inner join pg_namespace as n on c.relnamespace = n.oid"
            ~ " where n.nspname = '" ~ relation.schema ~ "'"
            ~ " and c.relname = '" ~ relation.identifier ~ "'") -%}
        {%- if result.rows | length > 0 and result.rows[0][0] -%}
            analyze {{ relation }}
        {%- else -%}
            {{ log("not analyzing " ~ relation ~ ": only its owner may", info=false) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
