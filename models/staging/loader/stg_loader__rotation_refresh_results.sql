with

results as (

    select * from {{ source('loader', 'rotation_refresh_results') }}

),

renamed as (

    select
        result_id,
        run_id,
        identity_id,
        refreshed_at,
        status,
        warmed_releases,
        warmed_artists,
        sources,
        message
    from results

)

select * from renamed
