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

{#- SQL boolean: a station identity or source row a person's decision wrote
    (library-identity review): notes starting with var review_notes_prefix. No verdict
    writes it; only a later decision rewrites it. -#}
{% macro is_review_row(notes_sql) -%}
    coalesce(starts_with({{ notes_sql }}, '{{ var("review_notes_prefix") }}'), false)
{%- endmacro %}

{#- SQL text or NULL: why a single_artist verdict stored no identity of its own: the
    reason the merge skipped it (its verdict-level row in merge_skips), not_merged_yet
    while no merge has covered it, or identity_not_stored when has_identity_sql says its
    row has no stored identity (a row removed since). NULL for every other kind. -#}
{% macro verdict_merge_skip_reason(kind_sql, verdict_id_sql, skip_reason_sql,
                                   has_identity_sql='true') -%}
    case
        when {{ kind_sql }} = 'single_artist'
            then coalesce(
                    {{ skip_reason_sql }},
                    case
                        when {{ verdict_id_sql }} > (
                            select watermark.merged_through
                            from {{ ref('int_merges__watermark') }} as watermark
                        ) then 'not_merged_yet'
                        when not ({{ has_identity_sql }}) then 'identity_not_stored'
                    end
                )
    end
{%- endmacro %}

{#- SQL text: the state a verdict leaves its library row in: resolved (an identity is
    stored from it), merge_skipped (single_artist, but no identity of its own is stored:
    see verdict_merge_skip_reason), compilation (per-track data counts) or unresolved. -#}
{% macro verdict_state(kind_sql, tracks_counted_sql, merge_skip_reason_sql) -%}
    case
        when {{ kind_sql }} = 'single_artist' and {{ merge_skip_reason_sql }} is null then 'resolved'
        when {{ kind_sql }} = 'single_artist' then 'merge_skipped'
        when {{ verdict_resolves(kind_sql, tracks_counted_sql) }} then 'compilation'
        else 'unresolved'
    end
{%- endmacro %}
