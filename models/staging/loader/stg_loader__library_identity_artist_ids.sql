-- All six artist-level ids of each identity the project wrote (the station's
-- library_identity holds three of them).
with

artist_ids as (

    select * from {{ source('loader', 'library_identity_artist_ids') }}

),

final as (

    select
        library_id,
        {% for column in var('artist_id_columns') -%}
            {{ column }},
        {% endfor -%}
        method,
        confidence,
        last_verified_at,
        verdict_id,
        run_id
    from artist_ids

)

select * from final
