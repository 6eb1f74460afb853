with

merge_history as (

    select * from {{ source('loader', 'merge_history') }}

),

renamed as (

    select
        history_id,
        merge_id,
        run_id,
        verdict_id,
        library_id
    from merge_history

)

select * from renamed
