with

credits as (

    select * from {{ source('station', 'compilation_track_artist') }}

),

renamed as (

    select
        id as cta_id,
        library_id,
        artist_name,
        track_title,
        track_position,
        track_artist_id,
        track_artist_link_confidence,
        track_artist_link_method,
        -- A person set this link: machine writers never touch the row.
        coalesce(track_artist_link_method = 'librarian', false) as is_librarian_linked
    from credits

)

select * from renamed
