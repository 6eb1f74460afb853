-- The V/A cohort of each library row. It only picks the batch size and track
-- requests; LML decides V/A itself from the artist name.
with

library as (

    select * from {{ ref('stg_station__library') }}

),

artists as (

    select * from {{ ref('stg_station__artists') }}

),

credited as (

    select distinct library_id
    from {{ ref('stg_station__compilation_track_artist') }}

),

markers as (

    select
        library.library_id,
        library.has_va_volume_letters,
        credited.library_id is not null as has_compilation_credits,
        coalesce(artists.is_va_artist, false)
        or {{ is_va_artist_name('library.artist_name') }} as has_va_artist_name
    from library
    left join artists on library.artist_id = artists.artist_id
    left join credited on library.library_id = credited.library_id

),

final as (

    select
        library_id,
        has_va_volume_letters,
        has_compilation_credits,
        has_va_artist_name,
        case
            when has_va_volume_letters or has_compilation_credits or has_va_artist_name
                then 'va'
            else 'non_va'
        end as cohort
    from markers

)

select * from final
