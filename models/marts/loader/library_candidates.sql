{{
    config(
        materialized='table',
        tags=['candidates'],
        indexes=[{'columns': ['cohort', 'library_id'], 'unique': true}],
    )
}}
{#- Built as a table at `dbt run` time: a stable snapshot the loader pages through
    (library_id > cursor, by cohort) without recomputing status per page. -#}
{%- set mode = candidate_mode() -%}
{%- set stale = "interval '" ~ day_count_var('stale_days') ~ " days'" -%}
{%- set retry = "interval '" ~ day_count_var('unresolved_retry_days') ~ " days'" -%}

with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

named as (

    -- Rows without an artist name are never sent to LML.
    select * from status
    where artist_name is not null

),

reasons as (

    -- The reason each mode would give (NULL: not a candidate); the var picks one below.
    select
        *,
        case
            when status = 'never_attempted' then 'never_attempted'
            -- A verdict the merge skipped returns like a resolved row: LML answered,
            -- and asking again sooner would get the same answer.
            when
                status in ('resolved', 'compilation', 'merge_skipped')
                and last_resolved_at < evaluated_at - {{ stale }}
                then 'stale_resolved'
            when
                status = 'unresolved'
                and last_attempt_at < evaluated_at - {{ retry }}
                then 'unresolved_retry'
        end as full_reason,
        -- Every previously unresolved row, whatever the windows say.
        case when status = 'unresolved' then 'recheck' end as recheck_reason,
        -- The old consumer's canonical-only predicate: a canonical id, no fresh identity, and
        -- (V/A only) a no-match stamp older than the retry window.
        case
            when
                canonical_entity_id is not null
                and (
                    station_last_verified_at is null
                    or station_last_verified_at < evaluated_at - {{ stale }}
                )
                and (
                    cohort = 'non_va'
                    or unresolved_attempted_at is null
                    or unresolved_attempted_at < evaluated_at - {{ retry }}
                )
                then
                    case
                        when has_station_identity then 'stale_resolved'
                        when unresolved_attempted_at is not null then 'unresolved_retry'
                        else 'never_attempted'
                    end
        end as legacy_reason
    from named

),

final as (

    select
        library_id,
        artist_name::text as artist_name,
        album_title::text as album_title,
        legacy_release_id,
        cohort,
        {{ mode }}_reason as reason,
        '{{ mode }}'::text as candidate_mode
    from reasons
    where {{ mode }}_reason is not null

)

select * from final
