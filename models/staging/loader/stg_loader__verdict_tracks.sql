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
        entry.entry_index::integer as entry_position,
        entry.entry_value ->> 'track_position' as track_position,
        entry.entry_value ->> 'artist_name' as artist_name,
        entry.entry_value ->> 'track_title' as track_title,
        entry.entry_value ->> 'resolved_artist_name' as resolved_artist_name,
        case
            when jsonb_typeof(entry.entry_value -> 'confidence') = 'number'
                then (entry.entry_value ->> 'confidence')::double precision
        end as confidence,
        entry.entry_value ->> 'method' as method
    from verdicts
    cross join lateral jsonb_array_elements(
        case
            when jsonb_typeof(verdicts.result -> 'tracks') = 'array'
                then verdicts.result -> 'tracks'
            else '[]'::jsonb
        end
    ) with ordinality as entry (entry_value, entry_index)

)

select * from entries
