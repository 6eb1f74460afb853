with

rotation as (

    select * from {{ source('station', 'rotation') }}

),

renamed as (

    select
        id as rotation_id,
        album_id as library_id,
        rotation_bin::text as rotation_bin,
        add_date,
        kill_date,
        discogs_release_id,
        lml_identity_id,
        -- No boolean column marks an active row: it is active until its kill date.
        (kill_date is null or kill_date > current_date) as is_active
    from rotation

)

select * from renamed
