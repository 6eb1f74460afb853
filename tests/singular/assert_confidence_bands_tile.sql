-- The confidence bands tile every confidence without gap or overlap, best first: each
-- band ends where the band above it starts, and only the top band is open above and
-- only the lowest below.
{{ config(tags=['audit']) }}

with

bands as (

    select * from {{ ref('confidence_bands') }}

),

ordered as (

    select
        band_order,
        confidence_band,
        lower_bound,
        upper_bound,
        lag(lower_bound) over (order by band_order) as lower_bound_of_better_band,
        band_order = min(band_order) over () as is_top,
        band_order = max(band_order) over () as is_lowest
    from bands

),

final as (

    select * from ordered
    where
        (upper_bound is null) <> is_top
        or (lower_bound is null) <> is_lowest
        or (not is_top and upper_bound is distinct from lower_bound_of_better_band)

)

select * from final
