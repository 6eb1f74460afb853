-- What the merges did not write, by level and reason: for each library row, the skips
-- of its latest merge only (a replay re-judges older ones). other_writer counts rows
-- another writer owns, which the project leaves alone.
with

skips as (

    select * from {{ ref('stg_loader__merge_skips') }}

),

latest_per_row as (

    select
        library_id,
        max(merge_id) as merge_id
    from skips
    group by library_id

),

current_skips as (

    select skips.*
    from skips
    inner join latest_per_row
        on
            skips.library_id = latest_per_row.library_id
            and skips.merge_id = latest_per_row.merge_id

),

final as (

    select
        skip_level,
        reason,
        count(*) as items,
        count(distinct library_id) as library_rows
    from current_skips
    group by skip_level, reason

)

select * from final
