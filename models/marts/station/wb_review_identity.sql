-- What a person's decisions (library-identity review) do to the station's identity rows:
-- one row per library row whose decision in force still has something to change. accept
-- keeps the stored identity and makes it the librarian's; set writes the person's ids
-- (method manual, confidence 1); reject removes the stored identity. Rows another writer
-- owns are never touched; the history snapshot is what the decision supersedes.
{%- set ids = ['discogs_master_id', 'discogs_release_id', 'musicbrainz_release_group_mbid',
               'musicbrainz_release_mbid', 'musicbrainz_recording_mbid', 'wikidata_qid',
               'spotify_id', 'apple_music_id'] %}
{%- set kept = ['last_verified_at', 'method', 'confidence', 'agreement_sources', 'notes'] %}
with

review as (

    select * from {{ ref('int_review__decisions') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

decided as (

    select
        review.decision_id,
        review.library_id,
        review.decision,
        case when review.decision = 'reject' then 'delete' else 'upsert' end as write_action,
        {% for column in ids -%}
            case
                when review.decision = 'accept' then current_row.{{ column }}
                {% if column == 'musicbrainz_recording_mbid' -%}
                    else null::uuid
                {%- else -%}
                    else review.{{ column }}
                {%- endif %}
            end as {{ column }},
        {% endfor -%}
        review.decided_at as last_verified_at,
        case when review.decision = 'accept' then current_row.method else 'manual' end as method,
        case
            when review.decision = 'accept' then current_row.confidence else 1.0::real
        end as confidence,
        case when review.decision = 'accept' then current_row.agreement_sources end
            as agreement_sources,
        review.station_notes as notes,
        current_row.library_id is not null as has_current,
        current_row.library_id is null
        or {{ is_project_row('current_row.notes') }}
        or {{ is_review_row('current_row.notes') }} as is_writable,
        {% for column in ids + kept -%}
            current_row.{{ column }} as current_{{ column }},
        {% endfor -%}
        'a librarian''s decision ' || review.decision_id || ' (' || review.decision || ' by '
        || review.decided_by || coalesce('; ' || nullif(review.note, ''), '') || ')'
            as superseded_reason
    from review
    left join station_identity as current_row on review.library_id = current_row.library_id

),

final as (

    select * from decided
    where
        is_writable
        and (
            (write_action = 'delete' and has_current)
            or (
                write_action = 'upsert' and (has_current or decision = 'set')
                and (
                    {{ ids | join(', ') }}, {{ kept | join(', ') }}
                ) is distinct from (
                    {% for column in ids + kept -%}
                        current_{{ column }}{{ ", " if not loop.last }}
                    {%- endfor %}
                )
            )
        )

)

select * from final
