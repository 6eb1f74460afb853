{#- The rules that map a verdict to the library row's state, written once. -#}

{#- SQL boolean: the verdict resolves its row: an artist identity (single_artist), or a
    compilation whose per-track data counts. Anything else means LML had no match. -#}
{% macro verdict_resolves(kind_sql, tracks_counted_sql) -%}
    ({{ kind_sql }} = 'single_artist' or ({{ kind_sql }} = 'compilation' and {{ tracks_counted_sql }} is true))
{%- endmacro %}

{#- SQL text or NULL: "<label> <old> -> <new>" when a known id was replaced by another.
    A missing new id is not a change (a missing id never wipes a known one). -#}
{% macro id_change(label, old_sql, new_sql) -%}
    case
        when {{ old_sql }} <> {{ new_sql }}
            then '{{ label }} ' || {{ old_sql }} || ' -> ' || {{ new_sql }}
    end
{%- endmacro %}

{#- SQL boolean: a station identity or source row the project may write: its notes are
    the project's, or those of the writer it replaces (var identity_takeover_notes).
    Var take_over_other_writers makes every row the project's. -#}
{% macro is_project_row(notes_sql) -%}
    {%- if var('take_over_other_writers') -%}
        true
    {%- else -%}
        coalesce({{ notes_sql }} in (
            '{{ var("identity_notes") }}'
        {%- for note in var('identity_takeover_notes') %}, '{{ note }}'{% endfor -%}
        ), false)
    {%- endif -%}
{%- endmacro %}
