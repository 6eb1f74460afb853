{{ config(materialized='table', tags=['merge']) }}
-- The identity each library row with a new mergeable single_artist verdict should
-- have: the newest such verdict, laid over the station's current row so that no known
-- id is wiped, with whether the project may write the row and what it supersedes.
{%- set station_ids = ['discogs_master_id', 'discogs_release_id', 'musicbrainz_release_group_mbid',
                       'musicbrainz_release_mbid', 'musicbrainz_recording_mbid'] %}
with

checked as (

    select * from {{ ref('int_verdicts__single_artist_checked') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

stored_artist_ids as (

    select * from {{ ref('stg_loader__library_identity_artist_ids') }}

),

review as (

    select * from {{ ref('int_review__decisions') }}

),

latest as (

    select * from checked
    where is_mergeable and mergeable_rank = 1

),

laid_over as (

    select
        latest.library_id,
        latest.verdict_id,
        latest.run_id,
        latest.attempted_at,
        latest.method,
        latest.confidence::real as confidence,
        latest.usable_sources,
        -- Which sources agreed, when agreement is the method.
        case
            when latest.method = 'cross_source_agreement' then latest.usable_sources
        end as agreement_sources,
        '{{ var("identity_notes") }}'::text as notes,
        {% for column in var('artist_id_columns') -%}
            latest.{{ column }},
        {% endfor -%}
        stored_artist_ids.discogs_artist_id as prior_discogs_artist_id,
        stored_artist_ids.musicbrainz_artist_id as prior_musicbrainz_artist_id,
        stored_artist_ids.bandcamp_id as prior_bandcamp_id,
        -- Release-level ids: the station's value always wins.
        {% for column in station_ids -%}
            coalesce(current_row.{{ column }}, latest.{{ column }}) as station_{{ column }},
        {% endfor -%}
        -- Artist-level ids: a new value replaces the old one, a missing one never wipes it.
        coalesce(latest.wikidata_qid, current_row.wikidata_qid) as station_wikidata_qid,
        coalesce(latest.spotify_artist_id, current_row.spotify_id) as station_spotify_id,
        coalesce(latest.apple_music_artist_id, current_row.apple_music_id) as station_apple_music_id,
        current_row.library_id is not null as has_current,
        -- A replay of the log (merge_full_rebuild) also re-derives rows that already
        -- reflect their verdict; the write-back rewrites only what then differs.
        current_row.library_id is null
        or latest.attempted_at
        {{ '>=' if var('merge_full_rebuild') else '>' }} current_row.last_verified_at as is_newer,
        -- A row a person decided on is theirs: no verdict writes it (review.decision).
        review.decision as review_decision,
        review.library_id is null
        and (current_row.library_id is null or {{ is_project_row('current_row.notes') }})
            as is_ours,
        {% for column in station_ids + ['wikidata_qid', 'spotify_id', 'apple_music_id',
                                        'last_verified_at', 'method', 'confidence',
                                        'agreement_sources', 'notes'] -%}
        current_row.{{ column }} as current_{{ column }}{{ "," if not loop.last }}
    {% endfor %}
    from latest
    left join station_identity as current_row on latest.library_id = current_row.library_id
    left join stored_artist_ids on latest.library_id = stored_artist_ids.library_id
    left join review on latest.library_id = review.library_id

),

id_changes as (

    select
        *,
        concat_ws(
            '; ',
            {{ id_change('wikidata_qid', 'current_wikidata_qid', 'wikidata_qid') }},
            {{ id_change('spotify_id', 'current_spotify_id', 'spotify_artist_id') }},
            {{ id_change('apple_music_id', 'current_apple_music_id', 'apple_music_artist_id') }},
            {{ id_change('discogs_artist_id', 'prior_discogs_artist_id', 'discogs_artist_id') }},
            {{ id_change('musicbrainz_artist_id', 'prior_musicbrainz_artist_id', 'musicbrainz_artist_id') }},
            {{ id_change('bandcamp_id', 'prior_bandcamp_id', 'bandcamp_id') }}
        ) as id_change_summary
    from laid_over

),

changes as (

    select
        *,
        nullif(concat_ws(
            '; ',
            case when current_method <> method then 'method ' || current_method || ' -> ' || method end,
            nullif(id_change_summary, '')
        ), '') as change_summary,
        id_change_summary <> '' as has_id_change
    from id_changes

),

final as (

    select
        *,
        is_newer and is_ours as is_written,
        case
            when has_current and is_newer and is_ours and change_summary is not null
                then 'verdict ' || verdict_id || ': ' || change_summary
        end as superseded_reason,
        case
            when not (has_current and is_newer and is_ours and change_summary is not null) then null
            when has_id_change then 'id_changed'
            else 'method_changed'
        end as reason_category
    from changes

)

select * from final
