-- Age of every covered row's identity (resolved or compilation), from its last
-- resolution to the database's now(), as a histogram. stale_identities are the rows
-- older than var stale_days, the ones the next full run re-checks; rows without a
-- resolution time land in bucket unknown.
{%- set stale_days = day_count_var('stale_days') %}

with

status as (

    select * from {{ ref('int_library__identity_status') }}

),

buckets (bucket_order, age_bucket, lower_days, upper_days) as (

    values
    (1, '< 1 day', 0, 1),
    (2, '1-7 days', 1, 7),
    (3, '7-30 days', 7, 30),
    (4, '30-90 days', 30, 90),
    (5, '90-365 days', 90, 365),
    (6, '>= 1 year', 365, null),
    -- A covered row without any resolution time (possible in a station's own data).
    (7, 'unknown', null, null)

),

aged as (

    select
        status,
        -- Clock skew between writers must not make an age negative.
        greatest(extract(epoch from evaluated_at - last_resolved_at) / 86400.0, 0) as age_days
    from status
    where status in ('resolved', 'compilation')

),

counts as (

    select
        buckets.bucket_order,
        count(aged.status) as identities,
        count(aged.status) filter (where aged.status = 'resolved') as resolved,
        count(aged.status) filter (where aged.status = 'compilation') as compilation,
        count(aged.status) filter (where aged.age_days >= {{ stale_days }}) as stale_identities
    from buckets
    left join aged
        on
            (buckets.lower_days is null and aged.age_days is null)
            or (
                buckets.lower_days <= aged.age_days
                and (buckets.upper_days is null or buckets.upper_days > aged.age_days)
            )
    group by buckets.bucket_order

),

final as (

    select
        buckets.bucket_order,
        buckets.age_bucket::text as age_bucket,
        buckets.lower_days,
        buckets.upper_days,
        counts.identities,
        counts.resolved,
        counts.compilation,
        counts.stale_identities,
        {{ stale_days }} as stale_days
    from buckets
    inner join counts on buckets.bucket_order = counts.bucket_order

)

select * from final
