-- Release identities to warm in LML's cache: distinct handles of active rotation rows.
with

rotation as (

    select * from {{ ref('stg_station__rotation') }}

),

final as (

    select distinct lml_identity_id
    from rotation
    where is_active and lml_identity_id is not null

)

select * from final
