{{ config(materialized='table', tags=['merge']) }}
-- Every new single_artist verdict with the reason it cannot be merged (NULL when it
-- can), and its rank among the new mergeable verdicts of its library row.
with

verdicts as (

    select * from {{ ref('int_verdicts__new') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),

provenance as (

    select * from {{ ref('int_verdicts__provenance_checked') }}

),

usable_sources as (

    select
        verdict_id,
        count(*) as usable_source_count,
        string_agg(source, ',' order by source) as usable_sources
    from provenance
    where is_usable
    group by verdict_id

),

checked as (

    select
        verdicts.verdict_id,
        verdicts.run_id,
        verdicts.library_id,
        verdicts.attempted_at,
        verdicts.method,
        verdicts.confidence,
        {% for column in var('artist_id_columns') -%}
            verdicts.{{ column }},
        {% endfor -%}
        verdicts.discogs_master_id,
        verdicts.discogs_release_id,
        verdicts.musicbrainz_release_group_mbid,
        verdicts.musicbrainz_release_mbid,
        verdicts.musicbrainz_recording_mbid,
        coalesce(usable_sources.usable_source_count, 0) as usable_source_count,
        usable_sources.usable_sources,
        case
            when library.library_id is null then 'library_row_missing'
            when not verdicts.is_known_method then 'unknown_method'
            -- A confidence outside its method's band is never stored.
            when not verdicts.is_confidence_in_band then 'out_of_band'
            when usable_sources.verdict_id is null then 'no_usable_provenance'
        end as skip_reason
    from verdicts
    left join library on verdicts.library_id = library.library_id
    left join usable_sources on verdicts.verdict_id = usable_sources.verdict_id
    where verdicts.kind = 'single_artist'

),

final as (

    select
        *,
        skip_reason is null as is_mergeable,
        case
            when skip_reason is null
                then row_number() over (
                        partition by library_id, skip_reason is null
                        order by attempted_at desc, verdict_id desc
                    )
        end as mergeable_rank
    from checked

)

select * from final
