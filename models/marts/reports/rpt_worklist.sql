-- What needs a person, one row per library row: albums LML found nothing for
-- (unresolved), answers the merge refused to store (refused) and stored identities in the
-- lowest band the merge stores or below it (low_confidence), each with why
-- in plain words and the station identity's ids (where one exists) for a person to
-- confirm or correct with `library-identity review`.
with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

station_identity as (

    select * from {{ ref('stg_station__library_identity') }}

),

verdicts as (

    select * from {{ ref('stg_loader__raw_verdicts') }}

),

bands as (

    select * from {{ ref('confidence_bands') }}

),

tries as (

    select
        library_id,
        count(*) as times_tried
    from verdicts
    group by library_id

),

latest_answer as (

    select
        verdicts.verdict_id,
        verdicts.method,
        verdicts.confidence
    from verdicts
    inner join status on verdicts.verdict_id = status.latest_verdict_id
    where status.status = 'merge_skipped'

),

lowest_stored_band as (

    -- The lowest band the merge stores (the last band at or above the identity gate).
    select max(band_order) as band_order
    from bands
    where not below_gate

),

rows_needing_a_person as (

    select
        status.*,
        case
            when status.status = 'unresolved' then 'unresolved'
            when status.status = 'merge_skipped' then 'refused'
            else 'low_confidence'
        end as kind,
        bands.confidence_band as station_band
    from status
    cross join lowest_stored_band
    left join bands
        on
            round(status.station_confidence::numeric, 3) >= coalesce(bands.lower_bound, 0)
            and round(status.station_confidence::numeric, 3) < coalesce(bands.upper_bound, 2)
    where
        status.status in ('unresolved', 'merge_skipped')
        -- That band, and anything lower another writer stored.
        or (
            status.status = 'resolved'
            and coalesce(bands.band_order, 99) >= lowest_stored_band.band_order
            -- A person kept or set it (library-identity review): nothing left to decide.
            and status.review_decision is null
        )

),

final as (

    select
        rows_needing_a_person.kind,
        rows_needing_a_person.library_id,
        rows_needing_a_person.artist_name::text as artist_name,
        rows_needing_a_person.album_title::text as album_title,
        rows_needing_a_person.cohort,
        coalesce(tries.times_tried, 0)::bigint as times_tried,
        rows_needing_a_person.last_attempt_at as last_tried_at,
        coalesce(
            rows_needing_a_person.merge_skip_reason,
            case
                when rows_needing_a_person.kind = 'low_confidence' then 'low_band'
                when rows_needing_a_person.latest_kind = 'compilation' then 'tracks_not_attempted'
                when rows_needing_a_person.latest_kind is null then 'stamped_before'
                else 'no_match'
            end
        ) as reason,
        case
            when rows_needing_a_person.kind = 'low_confidence'
                then 'stored by ' || rows_needing_a_person.station_method || ' at '
                    || to_char(rows_needing_a_person.station_confidence, 'FM0.00')
                    || case
                        when rows_needing_a_person.station_confidence
                            < {{ var("identity_confidence_gate") }}
                            then ', below the '
                                || to_char({{ var("identity_confidence_gate") }}, 'FM0.00')
                                || ' the station''s identity gate counts as resolved'
                        else ', the lowest band the merge stores ('
                            || rows_needing_a_person.station_band || ')'
                    end
            when rows_needing_a_person.kind = 'unresolved'
                then case
                        when rows_needing_a_person.latest_kind = 'compilation'
                            then 'a compilation whose tracks LML has not looked up yet'
                        when rows_needing_a_person.latest_kind is null
                            then 'marked "no match" before this tool kept answers'
                        else 'LML found no match'
                    end
            else case rows_needing_a_person.merge_skip_reason
                    when 'out_of_band'
                        then 'LML matched by ' || latest_answer.method || ' at '
                            || to_char(latest_answer.confidence, 'FM0.00')
                            || ', outside the '
                            || case latest_answer.method
                                {%- for method, band in identity_method_bands().items() %}
                                    {%- set lo, hi = "%.2f" | format(band[0]), "%.2f" | format(band[1]) %}
                                    when '{{ method }}' then '{{ lo if lo == hi else lo ~ "-" ~ hi }}'
                                {%- endfor %}
                            end
                            || ' that method is trusted at'
                    when 'no_usable_provenance' then 'LML matched, but named no source id the station can store'
                    when 'unknown_method'
                        then 'LML matched by a method it does not document ('
                            || coalesce(latest_answer.method, 'none') || ')'
                    when 'other_writer' then 'another writer keeps this album''s identity'
                    when 'superseded_by_newer_identity' then 'a newer identity is already stored'
                    when 'rejected_by_librarian' then 'a person rejected this identity'
                    when 'not_merged_yet' then 'answered; the next merge stores it'
                    when 'identity_not_stored' then 'stored once, removed since'
                    when 'library_row_missing' then 'the album left the library'
                    else 'not stored (' || rows_needing_a_person.merge_skip_reason || ')'
                end
        end as why,
        coalesce(station_identity.method, latest_answer.method) as method,
        round(coalesce(
            station_identity.confidence::numeric, latest_answer.confidence::numeric
        ), 2) as confidence,
        station_identity.discogs_release_id,
        station_identity.discogs_master_id,
        station_identity.musicbrainz_release_group_mbid,
        station_identity.musicbrainz_release_mbid,
        station_identity.wikidata_qid,
        station_identity.spotify_id,
        station_identity.apple_music_id,
        case rows_needing_a_person.kind
            when 'unresolved' then 1 when 'refused' then 2 else 3
        end as kind_order
    from rows_needing_a_person
    left join tries on rows_needing_a_person.library_id = tries.library_id
    left join latest_answer on rows_needing_a_person.latest_verdict_id = latest_answer.verdict_id
    left join station_identity on rows_needing_a_person.library_id = station_identity.library_id

)

select * from final
