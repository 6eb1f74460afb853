with

runs as (

    select * from {{ source('loader', 'runs') }}

),

renamed as (

    select
        run_id,
        job,
        mode,
        started_at,
        finished_at,
        status,
        options,
        counters,
        error
    from runs

)

select * from renamed
