-- "Matched via", by source: the stored source entries of every resolved library row
-- by IdentitySource and confidence band. A row has at most one entry per source, so
-- share_of_resolved_pct is the share of resolved rows carrying that source in that band.
{%- set sources = var('identity_sources') %}

with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

station_sources as (

    select * from {{ ref('stg_station__library_identity_source') }}

),

bands as (

    select * from {{ ref('confidence_bands') }}

),

resolved as (

    select library_id
    from status
    where status = 'resolved'

),

entries as (

    -- Grouped before banding: the band join is a range join, cheap on few values.
    select
        station_sources.source,
        -- Stored as real: rounding first keeps 0.9 from reading as 0.8999999.
        round(station_sources.confidence::numeric, 3) as confidence,
        count(*) as library_rows
    from resolved
    inner join station_sources on resolved.library_id = station_sources.library_id
    group by 1, 2

),

counts as (

    select
        entries.source,
        coalesce(bands.confidence_band, 'none') as confidence_band,
        coalesce(bands.band_order, 7) as band_order,
        coalesce(bands.below_gate, true) as below_gate,
        sum(entries.library_rows)::bigint as library_rows
    from entries
    left join bands
        on
            entries.confidence >= coalesce(bands.lower_bound, 0)
            and entries.confidence < coalesce(bands.upper_bound, 2)
    group by 1, 2, 3, 4

),

totals as (

    select count(*) as resolved_rows
    from resolved

),

final as (

    select
        counts.source,
        case counts.source
            {%- for source in sources %}
                when '{{ source }}' then {{ loop.index }}
            {%- endfor %}
            else {{ sources | length + 1 }}
        end as source_order,
        counts.confidence_band,
        counts.band_order,
        counts.below_gate,
        counts.library_rows,
        round(100.0 * counts.library_rows / nullif(totals.resolved_rows, 0), 2)
            as share_of_resolved_pct
    from counts
    cross join totals

)

select * from final
