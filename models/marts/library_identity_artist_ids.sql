{{
    config(
        materialized='incremental',
        incremental_strategy='upsert',
        unique_key='library_id',
        full_refresh=false,
        on_schema_change='append_new_columns',
        tags=['merge'],
    )
}}
-- depends_on: {{ ref('library_identity') }}
-- All six artist-level ids of each library row's current identity. The station's
-- library_identity has columns for three of them only; this table keeps them all.
-- A later verdict without an id never wipes a known one.
{%- set id_columns = ['discogs_artist_id', 'musicbrainz_artist_id', 'wikidata_qid',
                      'spotify_artist_id', 'apple_music_artist_id', 'bandcamp_id'] %}

with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

current_ids as (

    {% if is_incremental() -%}
        select * from {{ this }}
    {%- else -%}
        -- First build: nothing stored yet.
        select
            null::integer as library_id,
            null::timestamptz as last_verified_at,
            null::bigint as discogs_artist_id,
            null::text as musicbrainz_artist_id,
            null::text as wikidata_qid,
            null::text as spotify_artist_id,
            null::text as apple_music_artist_id,
            null::text as bandcamp_id
        where false
    {%- endif %}

),

final as (

    select
        desired.library_id,
        {% for column in id_columns -%}
            coalesce(desired.{{ column }}, current_ids.{{ column }}) as {{ column }},
        {% endfor -%}
        desired.method,
        desired.confidence,
        desired.attempted_at as last_verified_at,
        desired.verdict_id,
        desired.run_id
    from desired
    left join current_ids on desired.library_id = current_ids.library_id
    where current_ids.library_id is null or desired.attempted_at > current_ids.last_verified_at

)

select * from final
