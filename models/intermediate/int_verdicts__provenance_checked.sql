{{ config(materialized='table', tags=['merge'], indexes=[{'columns': ['verdict_id']}]) }}
-- Every provenance entry of a new single_artist verdict, with the reason it cannot be
-- stored (NULL when it can). library_identity_source needs a non-null external_id
-- (an entry without one would fail the whole write), a confidence in 0..1 and one row
-- per source.
with

verdicts as (

    select * from {{ ref('int_verdicts__new') }}

),

entries as (

    -- Unnested here from the new verdicts only: the staging view would unnest the log.
    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.attempted_at,
        {{ provenance_entry_columns() }}
    from verdicts
    cross join lateral {{ verdict_entries('provenance') }}
    where verdicts.kind = 'single_artist'

),

first_check as (

    select
        *,
        case
            when external_id is null then 'null_external_id'
            when confidence is null then 'null_confidence'
            when confidence not between 0 and 1 then 'confidence_out_of_range'
            when not {{ is_known_identity_source('source') }} then 'unknown_source'
            when not {{ is_known_identity_method('method') }} then 'unknown_method'
        end as invalid_reason
    from entries

),

ranked as (

    select
        *,
        -- One row per (library row, source): the most confident entry wins.
        case
            when invalid_reason is null
                then row_number() over (
                        partition by verdict_id, source, invalid_reason is null
                        order by confidence desc, entry_position asc
                    )
        end as source_rank
    from first_check

),

final as (

    select
        verdict_id,
        run_id,
        library_id,
        attempted_at,
        entry_position,
        source,
        method,
        confidence,
        external_id,
        coalesce(
            invalid_reason,
            case when source_rank > 1 then 'duplicate_source' end
        ) as skip_reason,
        coalesce(invalid_reason is null and source_rank = 1, false) as is_usable
    from ranked

)

select * from final
