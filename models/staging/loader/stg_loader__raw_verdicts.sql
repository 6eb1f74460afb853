with

raw_verdicts as (

    select * from {{ source('loader', 'raw_verdicts') }}

),

typed as (

    select
        verdict_id,
        run_id,
        library_id,
        attempted_at,
        cohort,
        kind,
        method,
        confidence,
        {% for column in var('artist_id_columns') -%}
            {{ column }},
        {% endfor -%}
        -- LML returns no release-level ids today; should `main` ever carry them,
        -- only well-formed values are taken (a bad value must not fail the merge).
        case
            when result -> 'main' ->> 'discogs_master_id' ~ '^[1-9][0-9]{0,8}$'
                then (result -> 'main' ->> 'discogs_master_id')::integer
        end as discogs_master_id,
        case
            when result -> 'main' ->> 'discogs_release_id' ~ '^[1-9][0-9]{0,8}$'
                then (result -> 'main' ->> 'discogs_release_id')::integer
        end as discogs_release_id,
        {% for mbid in ['musicbrainz_release_group_mbid', 'musicbrainz_release_mbid',
                        'musicbrainz_recording_mbid'] -%}
            case
                when result -> 'main' ->> '{{ mbid }}'
                    ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then (result -> 'main' ->> '{{ mbid }}')::uuid
            end as {{ mbid }},
        {% endfor -%}
        tracks_contract_version,
        tracks_attempted,
        coalesce(
            jsonb_typeof(result -> 'tracks') = 'array'
            and jsonb_array_length(result -> 'tracks') > 0, false
        ) as has_tracks,
        -- Per-track data counts only under contract version 1 and when the matcher
        -- ran; (false, non-empty) is a producer bug read as attempted.
        coalesce(
            tracks_contract_version = 1
            and (
                tracks_attempted
                or (
                    tracks_attempted = false and jsonb_typeof(result -> 'tracks') = 'array'
                    and jsonb_array_length(result -> 'tracks') > 0
                )
            ), false
        ) as tracks_counted,
        {{ is_known_identity_method('method') }} is true as is_known_method,
        {{ confidence_in_method_band('method', 'confidence') }} as is_confidence_in_band,
        result
    from raw_verdicts

)

select * from typed
