{#- Pre-hook of the models that write station tables: the table must already exist
    (a station database, or the migrations), and have every column the model writes.
    dbt would otherwise create a bare copy, or (on_schema_change append_new_columns,
    which contracts require) add a column to a station table. -#}
{% macro require_existing_table() -%}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(
            database=this.database, schema=this.schema, identifier=this.identifier) -%}
        {%- if relation is none -%}
            {{ exceptions.raise_compiler_error(
                this ~ " does not exist. It is a station table that the merge updates in place;"
                ~ " apply the migrations (library-identity migrate) first.") }}
        {%- endif -%}
        {%- set present = [] -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do present.append(column.name | lower) -%}
        {%- endfor -%}
        {%- for name in model.columns -%}
            {%- if name | lower not in present -%}
                {{ exceptions.raise_compiler_error(
                    this ~ " has no column " ~ name ~ "; the merge never alters station tables.") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of library_identity: keep library.unresolved_attempted_at in step with
    the raw verdict log for rows whose latest verdict is a no-match, so station tools
    that read the column keep working. Other rows are left alone; equal values are
    not rewritten (each write fires the station's change-notification trigger). -#}
{% macro sync_unresolved_attempted_at() -%}
    {%- if station_column_exists('library', 'unresolved_attempted_at') -%}
        update {{ source('station', 'library') }} as library
        set unresolved_attempted_at = latest.latest_attempted_at
        from {{ ref('int_verdicts__latest') }} as latest
        where latest.library_id = library.id
            and latest.latest_is_no_match
            and library.unresolved_attempted_at is distinct from latest.latest_attempted_at
    {%- endif -%}
{%- endmacro %}
