{{ config(materialized='table', tags=['merge', 'write_back']) }}
-- library.unresolved_attempted_at values the write-back sets: rows whose latest
-- verdict is not an artist identity (LML had no match, or a compilation, which is
-- linked per track instead) carry the time of that verdict, as the station's own
-- consumer stamps every compilation it visits. Unchanged values are not rewritten.
with

new_verdicts as (

    select * from {{ ref('int_verdicts__new') }}

),

latest as (

    select * from {{ ref('int_verdicts__latest') }}

),

library as (

    select * from {{ ref('stg_station__library') }}

),

final as (

    select
        library.library_id,
        latest.latest_attempted_at as unresolved_attempted_at
    from latest
    inner join library on latest.library_id = library.library_id
    where
        latest.library_id in (select new_verdicts.library_id from new_verdicts)
        and latest.latest_kind <> 'single_artist'
        and library.unresolved_attempted_at is distinct from latest.latest_attempted_at

)

select * from final
