-- Every landed verdict of a current library row with the row's state before and after
-- it, for churn and coverage-after-run. States follow int_library__identity_status:
-- resolved (single_artist, its identity stored), merge_skipped (single_artist, not
-- stored), compilation (tracks counted), unresolved (anything else). Before a row's
-- first verdict its state is inferred from the station's own data: an identity
-- verified, or a no-match stamp, earlier than that verdict; else never_attempted.
{%- set id_columns = var('artist_id_columns') %}

with

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

merge_skipped as (

    select * from {{ ref('int_verdicts__merge_skipped') }}

),

positioned as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.attempted_at,
        verdicts.kind,
        verdicts.method,
        {% for column in id_columns -%}
            verdicts.{{ column }},
        {% endfor -%}
        -- The case keeps tracks_counted (which reads the result document) to compilations.
        case when verdicts.kind = 'compilation' then verdicts.tracks_counted end as tracks_counted,
        merge_skipped.reason as skip_reason,
        station_identity.library_id is not null as has_station_identity,
        station_identity.last_verified_at as station_last_verified_at,
        library.unresolved_attempted_at,
        row_number() over (
            partition by verdicts.library_id
            order by verdicts.attempted_at desc, verdicts.verdict_id desc
        ) = 1 as is_last_attempt
    from verdicts
    -- Today's library rows only, like the identity status.
    inner join library on verdicts.library_id = library.library_id
    left join station_identity on verdicts.library_id = station_identity.library_id
    left join merge_skipped on verdicts.verdict_id = merge_skipped.verdict_id

),

stated as (

    -- Only the row's last verdict is held to today's stored identity, as the status is.
    select
        *,
        {{ verdict_state('kind', 'tracks_counted', verdict_merge_skip_reason(
            'kind', 'verdict_id', 'skip_reason',
            'not is_last_attempt or has_station_identity')) }} as state_after
    from positioned

),

sequenced as (

    select
        *,
        row_number() over by_row = 1 as is_first_attempt,
        lag(method) over by_row as previous_method,
        {% for column in id_columns -%}
            lag({{ column }}) over by_row as previous_{{ column }},
        {% endfor -%}
        lag(state_after) over by_row as previous_state
    from stated
    window by_row as (partition by library_id order by attempted_at asc, verdict_id asc)

),

compared as (

    select
        verdict_id,
        run_id,
        library_id,
        attempted_at,
        kind,
        is_first_attempt,
        case
            when not is_first_attempt then previous_state
            when station_last_verified_at < attempted_at then 'resolved'
            when unresolved_attempted_at < attempted_at then 'unresolved'
            else 'never_attempted'
        end as state_before,
        state_after,
        -- Same rule as the history archive: the method changed, or an artist-level id
        -- was replaced (a missing id is no change).
        previous_state = 'resolved' and state_after = 'resolved'
        and (
            method is distinct from previous_method
            {% for column in id_columns -%}
                or coalesce({{ column }} <> previous_{{ column }}, false)
            {% endfor %}
        ) as identity_changed
    from sequenced

),

final as (

    select
        verdict_id,
        run_id,
        library_id,
        attempted_at,
        kind,
        is_first_attempt,
        state_before,
        state_after,
        coalesce(identity_changed, false) as identity_changed,
        case
            when
                state_before in ('resolved', 'compilation')
                and state_after in ('resolved', 'compilation')
                then
                    case
                        when state_before <> state_after or identity_changed then 'changed'
                        else 'unchanged'
                    end
            when state_after in ('resolved', 'compilation') then 'appeared'
            when state_before in ('resolved', 'compilation') then 'disappeared'
            else 'not_covered'
        end as transition
    from compared

)

select * from final
