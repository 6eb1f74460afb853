-- The merge watermark: the last verdict an applied merge covered (0 before the first).
-- Everything that asks what is merged yet reads it here. Not tagged merge: a merge that
-- rebuilt this view would drop the views built on it (the candidates among them).
with

applied as (

    select * from {{ ref('stg_loader__merges') }}

),

final as (

    select coalesce(max(through_verdict_id), 0)::bigint as merged_through
    from applied

)

select * from final
