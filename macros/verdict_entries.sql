{#- A verdict's JSON arrays as rows, written once for the staging views (the whole log)
    and the merge (only the new verdicts). The verdict is aliased `verdicts`. -#}

{#- The lateral source of one entry per element of result -> key (none when missing or
    not an array), as `entry (entry_value, entry_index)`. -#}
{% macro verdict_entries(key) -%}
    jsonb_array_elements(
        case
            when jsonb_typeof(verdicts.result -> '{{ key }}') = 'array'
                then verdicts.result -> '{{ key }}'
            else '[]'::jsonb
        end
    ) with ordinality as entry (entry_value, entry_index)
{%- endmacro %}

{#- A JSON number as double precision; anything else (a string, a boolean) is NULL. The
    cast goes through numeric, which holds any JSON number exactly, and is range-safe: a
    number beyond double precision is +/-Infinity and one too small for it is 0, so it
    falls outside 0..1 exactly when the loader's contract.is_confidence says so, and no
    landed value can fail a merge. -#}
{% macro entry_number(field) -%}
    case
        when jsonb_typeof(entry.entry_value -> '{{ field }}') = 'number'
            then {{ numeric_as_double("(entry.entry_value ->> '" ~ field ~ "')::numeric") }}
    end
{%- endmacro %}

{% macro numeric_as_double(value) -%}
    case
        when abs({{ value }}) > 1e308
            then sign({{ value }})::double precision * 'infinity'::double precision
        when abs({{ value }}) < 1e-300 then 0::double precision
        else ({{ value }})::double precision
    end
{%- endmacro %}

{#- The columns of a provenance entry. Discogs ids may arrive as numbers; they are
    stored as text. -#}
{% macro provenance_entry_columns() -%}
    entry.entry_index::integer as entry_position,
    entry.entry_value ->> 'source' as source,
    entry.entry_value ->> 'method' as method,
    {{ entry_number('confidence') }} as confidence,
    case
        when jsonb_typeof(entry.entry_value -> 'external_id') in ('string', 'number')
            then entry.entry_value ->> 'external_id'
    end as external_id
{%- endmacro %}

{#- The columns of a per-track entry. -#}
{% macro track_entry_columns() -%}
    entry.entry_index::integer as entry_position,
    entry.entry_value ->> 'track_position' as track_position,
    entry.entry_value ->> 'artist_name' as artist_name,
    entry.entry_value ->> 'track_title' as track_title,
    entry.entry_value ->> 'resolved_artist_name' as resolved_artist_name,
    {{ entry_number('confidence') }} as confidence,
    entry.entry_value ->> 'method' as method
{%- endmacro %}
