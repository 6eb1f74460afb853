with

library as (

    select * from {{ source('station', 'library') }}

),

renamed as (

    select
        id as library_id,
        artist_id,
        artist_name,
        album_title,
        legacy_release_id,
        code_volume_letters,
        -- NULL counts as an empty string, so it never matches.
        coalesce(code_volume_letters, '') like 'Z%' as has_va_volume_letters,
        canonical_entity_id,
        {% if station_column_exists('library', 'unresolved_attempted_at') -%}
            unresolved_attempted_at
        {%- else -%}
            null::timestamptz as unresolved_attempted_at
        {%- endif %}
    from library

)

select * from renamed
