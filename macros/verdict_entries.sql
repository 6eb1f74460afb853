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

{#- A JSON number as double precision; anything else (a string, a boolean) is NULL. -#}
{% macro entry_number(field) -%}
    case
        when jsonb_typeof(entry.entry_value -> '{{ field }}') = 'number'
            then (entry.entry_value ->> '{{ field }}')::double precision
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
