{{
    config(
        materialized='incremental',
        schema='wxyc_schema',
        alias='library_identity',
        incremental_strategy='upsert',
        unique_key='library_id',
        full_refresh=false,
        on_schema_change='append_new_columns',
        tags=['merge'],
        pre_hook="{{ require_existing_table() }}",
        post_hook=[
            "{{ sync_unresolved_attempted_at() }}",
            {"sql": "{{ analyze_if_owner(this) }}", "transaction": false},
        ],
    )
}}
-- Post-hook: ANALYZE after the bulk write (station rule).
-- depends_on: {{ ref('library_identity_history') }}
-- depends_on: {{ ref('int_verdicts__latest') }}
-- Writes the station's library_identity in place: one row per library row from its
-- latest mergeable single_artist verdict, only where that verdict is newer than the
-- stored row. Compilations get no row (no artist identity); see compilation_track_links.
with

desired as (

    select * from {{ ref('int_library_identity__desired') }}

),

final as (

    select
        library_id,
        station_discogs_master_id as discogs_master_id,
        station_discogs_release_id as discogs_release_id,
        station_musicbrainz_release_group_mbid as musicbrainz_release_group_mbid,
        station_musicbrainz_release_mbid as musicbrainz_release_mbid,
        station_musicbrainz_recording_mbid as musicbrainz_recording_mbid,
        station_wikidata_qid as wikidata_qid,
        station_spotify_id as spotify_id,
        station_apple_music_id as apple_music_id,
        -- Database time: the verdict's attempted_at (station defect #7).
        attempted_at as last_verified_at,
        method,
        confidence,
        agreement_sources,
        notes
    from desired
    where is_newer

)

select * from final
