{{
    config(
        materialized='view',
        tags=['candidates'],
    )
}}
{#- A view, evaluated when read: a deployed view stays current while the project and its
    vars are unchanged, so a run with nothing due reads it without starting dbt. The
    loader copies it once into a temporary table it pages through (library_id > cursor,
    by cohort), so the status is computed once per run. -#}
{%- set mode = candidate_mode() -%}
{%- set stale = "interval '" ~ day_count_var('stale_days') ~ " days'" -%}
{%- set retry = "interval '" ~ day_count_var('unresolved_retry_days') ~ " days'" -%}

with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

cohorts as (

    select * from {{ ref('int_library__cohort') }}

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

due as (

    select
        library_id,
        artist_name::text as artist_name,
        album_title::text as album_title,
        legacy_release_id,
        {{ mode }}_reason as reason,
        '{{ mode }}'::text as candidate_mode
    from reasons
    where {{ mode }}_reason is not null

),

final as (

    -- The cohort (name patterns over every row and artist: most of the cost of this
    -- view) joined to the due rows only, so a read with nothing due never computes it.
    select
        due.library_id,
        due.artist_name,
        due.album_title,
        due.legacy_release_id,
        cohorts.cohort,
        due.reason,
        due.candidate_mode
    from due
    inner join cohorts on due.library_id = cohorts.library_id

)

select * from final
