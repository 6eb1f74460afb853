{{ config(materialized='table', tags=['merge']) }}
-- Per-track entries of each compilation's newest usable verdict among the new ones,
-- matched to the station's credit rows (by the exact credit key) and catalogue artists
-- (by folded name). One row per credit key (library_id, artist_name, track_title) that
-- LML answered.
with

verdicts as (

    select * from {{ ref('int_verdicts__new') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),


credits as (

    select * from {{ ref('stg_station__compilation_track_artist') }}

),

artists as (

    select * from {{ ref('stg_station__artists') }}

),

latest_compilations as (

    -- Only per-track data that counts (tracks_contract_version 1, tracks attempted).
    select distinct on (verdicts.library_id)
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id
    from verdicts
    inner join library on verdicts.library_id = library.library_id
    where verdicts.kind = 'compilation' and verdicts.tracks_counted
    order by verdicts.library_id asc, verdicts.attempted_at desc, verdicts.verdict_id desc

),

tracks as (

    -- Unnested here from the chosen verdicts only: the staging view would unnest the log.
    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        {{ track_entry_columns() }}
    from verdicts
    inner join latest_compilations on verdicts.verdict_id = latest_compilations.verdict_id
    cross join lateral {{ verdict_entries('tracks') }}

),

answered as (

    -- Entries without a resolved_artist_name are tracks LML failed on: dropped.
    select tracks.*
    from tracks
    where tracks.resolved_artist_name is not null and tracks.artist_name is not null

),

per_key as (

    select
        verdict_id,
        run_id,
        library_id,
        artist_name,
        track_title,
        -- When several entries share a key the last one wins.
        (array_agg(resolved_artist_name order by entry_position desc))[1] as resolved_artist_name,
        (array_agg(confidence order by entry_position desc))[1] as offered_confidence,
        count(distinct track_position) as offered_position_count,
        min(track_position) as offered_position
    from answered
    group by verdict_id, run_id, library_id, artist_name, track_title

),

artist_matches as (

    select
        per_key_names.resolved_artist_name,
        count(artists.artist_id) as catalogue_match_count,
        min(artists.artist_id) as matched_artist_id
    from (select distinct resolved_artist_name from per_key) as per_key_names
    left join artists
        on wxyc_schema.fold_artist_name(per_key_names.resolved_artist_name) = artists.artist_name_folded
    group by per_key_names.resolved_artist_name

),

final as (

    select
        per_key.verdict_id,
        per_key.run_id,
        per_key.library_id,
        per_key.artist_name,
        per_key.track_title,
        per_key.resolved_artist_name,
        credits.cta_id,
        coalesce(credits.is_librarian_linked, false) as is_librarian_linked,
        credits.track_artist_id as current_track_artist_id,
        credits.track_artist_link_confidence as current_link_confidence,
        credits.track_artist_link_method as current_link_method,
        credits.track_position as current_track_position,
        artist_matches.catalogue_match_count,
        -- Exactly one folded-name match links; none or several leave it NULL.
        case
            when artist_matches.catalogue_match_count = 1 then artist_matches.matched_artist_id
        end as track_artist_id,
        case
            when per_key.offered_confidence between 0 and 1 then per_key.offered_confidence::real
        end as link_confidence,
        per_key.offered_confidence,
        per_key.offered_position_count,
        -- A position fills an empty one only when exactly one fits the column.
        case
            when per_key.offered_position_count = 1 and length(per_key.offered_position) <= 20
                then per_key.offered_position
        end as offered_position,
        case
            when credits.cta_id is null then 'no_cta_match'
            when credits.is_librarian_linked then 'librarian'
        end as key_skip_reason,
        case
            when credits.track_position is not null then null
            when per_key.offered_position_count > 1 then 'position_ambiguous'
            when per_key.offered_position_count = 1 and length(per_key.offered_position) > 20
                then 'position_too_long'
        end as position_skip_reason
    from per_key
    left join credits
        on
            per_key.library_id = credits.library_id
            and per_key.artist_name = credits.artist_name
            and per_key.track_title is not distinct from credits.track_title
    left join artist_matches on per_key.resolved_artist_name = artist_matches.resolved_artist_name

)

select * from final
