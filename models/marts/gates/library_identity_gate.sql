-- The station's library identity gate, one row, counted as the station's script counts
-- it: every row under the confidence gate is unresolved, compilations included (they
-- have no artist identity by design; compilation_rows says how many there are).
with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

scored as (

    select
        status.library_id,
        status.artist_id,
        status.status,
        coalesce(station_identity.confidence, 0) as confidence,
        station_identity.method
    from status
    left join station_identity on status.library_id = station_identity.library_id

),

resolved_artists as (

    -- A sibling row of the same artist resolved by a method other than `inherited`.
    select distinct artist_id
    from scored
    where confidence >= {{ var('identity_confidence_gate') }} and method is distinct from 'inherited'

),

counts as (

    select
        count(*) as total_library_rows,
        count(*) filter (where scored.status = 'compilation') as compilation_rows,
        count(*) filter (
            where scored.confidence < {{ var('identity_confidence_gate') }}
        ) as unresolved_rows,
        count(*) filter (
            where scored.confidence < {{ var('identity_confidence_gate') }}
            and resolved_artists.artist_id is not null
        ) as fallback_resolved_rows
    from scored
    left join resolved_artists on scored.artist_id = resolved_artists.artist_id

),

final as (

    select
        total_library_rows,
        compilation_rows,
        unresolved_rows,
        fallback_resolved_rows,
        unresolved_rows - fallback_resolved_rows as truly_unresolved_rows,
        {{ var('identity_gate_max_unresolved') }}::bigint as max_truly_unresolved_rows,
        case
            when unresolved_rows - fallback_resolved_rows
                < {{ var('identity_gate_max_unresolved') }} then 'PASS'
            else 'FAIL'
        end as gate_status
    from counts

)

select * from final
