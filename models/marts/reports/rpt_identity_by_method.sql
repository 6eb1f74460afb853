-- "Matched via", by method: the stored identity of every resolved library row by its
-- IdentityMethod and confidence band (a resolved row always has a stored identity).
{%- set methods = var('identity_methods') %}

with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

bands as (

    select * from {{ ref('confidence_bands') }}

),

resolved as (

    -- Grouped before banding: the band join is a range join, cheap on few values.
    select
        station_method as method,
        -- Stored as real: rounding first keeps 0.9 from reading as 0.8999999.
        round(station_confidence::numeric, 3) as confidence,
        count(*) as identities
    from status
    where status = 'resolved'
    group by 1, 2

),

counts as (

    select
        resolved.method,
        coalesce(bands.confidence_band, 'none') as confidence_band,
        coalesce(bands.band_order, 7) as band_order,
        coalesce(bands.below_gate, true) as below_gate,
        sum(resolved.identities)::bigint as identities,
        coalesce(sum(resolved.identities) filter (
            where {{ confidence_in_method_band('resolved.method', 'resolved.confidence') }}
        ), 0)::bigint as in_method_band
    from resolved
    left join bands
        on
            resolved.confidence >= coalesce(bands.lower_bound, 0)
            and resolved.confidence < coalesce(bands.upper_bound, 2)
    group by 1, 2, 3, 4

),

final as (

    select
        method,
        case method
            {%- for method in methods %}
                when '{{ method }}' then {{ loop.index }}
            {%- endfor %}
            else {{ methods | length + 1 }}
        end as method_order,
        confidence_band,
        band_order,
        below_gate,
        identities,
        in_method_band,
        round(100.0 * identities / sum(identities) over (), 2) as share_of_resolved_pct
    from counts

)

select * from final
