with

artists as (

    select * from {{ source('station', 'artists') }}

),

renamed as (

    select
        id as artist_id,
        artist_name,
        wxyc_schema.fold_artist_name(artist_name) as artist_name_folded,
        code_letters,
        code_letters = 'V/A' or {{ is_va_artist_name('artist_name') }} as is_va_artist
    from artists

)

select * from renamed
