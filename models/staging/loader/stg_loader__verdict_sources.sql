-- One row per provenance entry of a verdict (result -> 'provenance').
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

entries as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        entry.entry_index::integer as entry_position,
        entry.entry_value ->> 'source' as source,
        entry.entry_value ->> 'method' as method,
        -- Only a JSON number is a confidence (never true or "0.95"): the loader's rule.
        case
            when jsonb_typeof(entry.entry_value -> 'confidence') = 'number'
                then (entry.entry_value ->> 'confidence')::double precision
        end as confidence,
        -- Discogs ids may arrive as numbers; they are stored as text.
        case
            when jsonb_typeof(entry.entry_value -> 'external_id') in ('string', 'number')
                then entry.entry_value ->> 'external_id'
        end as external_id
    from verdicts
    cross join lateral jsonb_array_elements(
        case
            when jsonb_typeof(verdicts.result -> 'provenance') = 'array'
                then verdicts.result -> 'provenance'
            else '[]'::jsonb
        end
    ) with ordinality as entry (entry_value, entry_index)

)

select * from entries
