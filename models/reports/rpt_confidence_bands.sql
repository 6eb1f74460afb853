-- Confidence bands for the "matched via" views. Boundaries follow the station's
-- 0.70 gate and LML's method bands (see macros/identity_vocabulary.sql); below_gate rows count as
-- unresolved in the station's library identity gate.
with

bands (band_order, confidence_band, lower_bound, upper_bound, below_gate) as (

    values
    (1, '1.00', 1.000, null, false),
    (2, '0.90-0.99', 0.900, 1.000, false),
    (3, '0.80-0.89', 0.800, 0.900, false),
    (4, '0.70-0.79', 0.700, 0.800, false),
    (5, '0.60-0.69', 0.600, 0.700, true),
    (6, '< 0.60', null, 0.600, true)

),

final as (

    select
        band_order,
        confidence_band::text as confidence_band,
        lower_bound::numeric as lower_bound,
        upper_bound::numeric as upper_bound,
        below_gate
    from bands

)

select * from final
