with

source_rows as (

    select * from {{ source('station', 'library_identity_source') }}

),

renamed as (

    select
        library_id,
        source,
        external_id,
        method,
        confidence,
        last_verified_at,
        boost_sources,
        notes
    from source_rows

)

select * from renamed
