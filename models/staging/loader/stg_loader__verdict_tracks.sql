-- One row per per-track entry of a verdict (result -> 'tracks').
with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

entries as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.kind,
        verdicts.tracks_counted,
        entry.ordinality::integer as entry_position,
        entry.value ->> 'track_position' as track_position,
        entry.value ->> 'artist_name' as artist_name,
        entry.value ->> 'track_title' as track_title,
        entry.value ->> 'resolved_artist_name' as resolved_artist_name,
        case
            when jsonb_typeof(entry.value -> 'confidence') = 'number'
                then (entry.value ->> 'confidence')::double precision
        end as confidence,
        entry.value ->> 'method' as method
    from verdicts
    cross join lateral jsonb_array_elements(
        case
            when jsonb_typeof(verdicts.result -> 'tracks') = 'array'
                then verdicts.result -> 'tracks'
            else '[]'::jsonb
        end
    ) with ordinality as entry (value, ordinality)

)

select * from entries
