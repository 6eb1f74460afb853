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
        entry.ordinality::integer as entry_position,
        entry.value ->> 'source' as source,
        entry.value ->> 'method' as method,
        case
            when jsonb_typeof(entry.value -> 'confidence') = 'number'
                then (entry.value ->> 'confidence')::double precision
        end as confidence,
        -- Discogs ids may arrive as numbers; they are stored as text.
        case
            when jsonb_typeof(entry.value -> 'external_id') in ('string', 'number')
                then entry.value ->> 'external_id'
        end as external_id
    from verdicts
    cross join lateral jsonb_array_elements(
        case
            when jsonb_typeof(verdicts.result -> 'provenance') = 'array'
                then verdicts.result -> 'provenance'
            else '[]'::jsonb
        end
    ) with ordinality as entry (value, ordinality)

)

select * from entries
