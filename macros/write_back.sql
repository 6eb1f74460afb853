{#- The write-back: applies the change sets that the write_back models computed to the
    station's tables, in ONE statement (data-modifying CTEs), so that identity rows,
    source rows, history, compilation links, no-match stamps and the merge's own state
    commit together or not at all. Every write is guarded again here (only changed
    values, only the project's rows), and no statement names a column the station's
    catalogue watermark watches. Called as `dbt run-operation apply_write_back`. -#}


{#- The columns the write-back sets in a table: those its source declaration marks
    `written_by: write_back`, in declaration order (models/staging/*/_*__sources.yml). -#}
{% macro written_columns(source_name, table_name) -%}
    {%- set columns = [] -%}
    {%- for node in graph.sources.values()
            if node.source_name == source_name and node.name == table_name -%}
        {%- for column in node.columns.values()
                if column.meta.get('written_by') == 'write_back' -%}
            {%- do columns.append(column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if execute and not columns -%}
        {{ exceptions.raise_compiler_error(
            "no column of " ~ source_name ~ "." ~ table_name ~ " is declared written_by: write_back") }}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}

{#- "set a = excluded.a, …" and the IS DISTINCT FROM guard for an upsert. -#}
{#- "a = source.a, …" for the columns. -#}
{% macro _assignments(columns, source) -%}
    {%- set items = [] -%}
    {%- for column in columns -%}
        {%- do items.append(column ~ ' = ' ~ source ~ '.' ~ column) -%}
    {%- endfor -%}
    {{ return(items | join(', ')) }}
{%- endmacro %}

{#- "set a = excluded.a, …" and the IS DISTINCT FROM guard for an upsert. -#}
{% macro _upsert_tail(keys, columns, target='dest') -%}
    {%- set values = columns | reject('in', keys) | list -%}
    on conflict ({{ keys | join(', ') }}) do update
    set {{ _assignments(values, 'excluded') }}
    where ({{ _prefixed(values, target) }}) is distinct from ({{ _prefixed(values, 'excluded') }})
{%- endmacro %}

{% macro write_back_sql(run_id=none) -%}
    {%- set identity = written_columns('station', 'library_identity') -%}
    {%- set history = written_columns('station', 'library_identity_history') -%}
    {%- set source_columns = written_columns('station', 'library_identity_source') -%}
    {%- set link = written_columns('station', 'compilation_track_artist') -%}
    {%- set stamp_columns = written_columns('station', 'library') -%}
    {%- set artist_ids = written_columns('loader', 'library_identity_artist_ids') -%}
    with

    new_verdicts as (
        select min(verdict_id) as from_verdict_id, max(verdict_id) as through_verdict_id
        from {{ ref('int_verdicts__new') }}
        having count(*) > 0
    ),

    history_rows as (
        insert into {{ source('station', 'library_identity_history') }} ({{ history | join(', ') }})
        select {{ history | join(', ') }} from {{ ref('wb_library_identity_history') }}
        -- History ids in library order, whatever plan reads the change set.
        order by library_id
        returning history_id, library_id
    ),

    identity_rows as (
        insert into {{ source('station', 'library_identity') }} as dest ({{ identity | join(', ') }})
        select {{ identity | join(', ') }} from {{ ref('wb_library_identity') }}
    {{ _upsert_tail(['library_id'], identity) }}
            and {{ is_project_row('dest.notes') }}
        returning 1
    ),

    source_deletes as (
        delete from {{ source('station', 'library_identity_source') }} as dest
        using {{ ref('wb_library_identity_source_deletes') }} as gone
        where
            dest.library_id = gone.library_id
            and dest.source = gone.source
            and {{ is_project_row('dest.notes') }}
        returning 1
    ),

    source_rows as (
        insert into {{ source('station', 'library_identity_source') }} as dest
            ({{ source_columns | join(', ') }})
        select {{ source_columns | join(', ') }} from {{ ref('wb_library_identity_source') }}
    {{ _upsert_tail(['library_id', 'source'], source_columns) }}
            and {{ is_project_row('dest.notes') }}
        returning 1
    ),

    track_links as (
        update {{ source('station', 'compilation_track_artist') }} as dest
        set {{ _assignments(link, 'change') }}
        from {{ ref('wb_compilation_track_artist') }} as change
        where
            dest.id = change.id
            and dest.track_artist_link_method is distinct from 'librarian'
            and ({{ _prefixed(link, 'dest') }}) is distinct from ({{ _prefixed(link, 'change') }})
        returning change.writes_position
    ),

    stamps as (
        update {{ source('station', 'library') }} as dest
        set {{ _assignments(stamp_columns, 'stamp') }}
        from {{ ref('wb_library_stamps') }} as stamp
        where
            dest.id = stamp.library_id
            and ({{ _prefixed(stamp_columns, 'dest') }})
            is distinct from ({{ _prefixed(stamp_columns, 'stamp') }})
        returning 1
    ),

    review_history_rows as (
        -- What a person's decision supersedes (library-identity review).
        insert into {{ source('station', 'library_identity_history') }} ({{ history | join(', ') }})
        select
            library_id,
    {%- for column in history[1:14] %} current_{{ column }},{% endfor %}
            superseded_reason,
            'librarian_decision'
        from {{ ref('wb_review_identity') }}
        where has_current
        returning 1
    ),

    review_identity_deletes as (
        delete from {{ source('station', 'library_identity') }} as dest
        using {{ ref('wb_review_identity') }} as decided
        where
            dest.library_id = decided.library_id
            and decided.write_action = 'delete'
            and ({{ is_project_row('dest.notes') }} or {{ is_review_row('dest.notes') }})
        returning 1
    ),

    review_identity_rows as (
        insert into {{ source('station', 'library_identity') }} as dest ({{ identity | join(', ') }})
        select {{ identity | join(', ') }} from {{ ref('wb_review_identity') }}
        where write_action = 'upsert'
    {{ _upsert_tail(['library_id'], identity) }}
            and ({{ is_project_row('dest.notes') }} or {{ is_review_row('dest.notes') }})
        returning 1
    ),

    review_source_deletes as (
        delete from {{ source('station', 'library_identity_source') }} as dest
        using {{ ref('wb_review_identity') }} as decided
        where
            dest.library_id = decided.library_id
            and ({{ is_project_row('dest.notes') }} or {{ is_review_row('dest.notes') }})
            and (
                decided.write_action = 'delete'
                or (
                    decided.decision = 'set'
                    and not exists (
                        select 1 from {{ ref('wb_review_sources') }} as offered
                        where offered.library_id = dest.library_id and offered.source = dest.source
                    )
                )
            )
        returning 1
    ),

    review_source_rows as (
        insert into {{ source('station', 'library_identity_source') }} as dest
            ({{ source_columns | join(', ') }})
        select {{ source_columns | join(', ') }} from {{ ref('wb_review_sources') }}
    {{ _upsert_tail(['library_id', 'source'], source_columns) }}
            and ({{ is_project_row('dest.notes') }} or {{ is_review_row('dest.notes') }})
        returning 1
    ),

    review_applied as (
        -- Decisions are applied under the resolve lock, so none lands between the build
        -- of the change sets and this statement.
        update {{ source('loader', 'review_decisions') }}
        set applied_at = now()
        where applied_at is null
        returning 1
    ),

    artist_id_rows as (
        insert into {{ source('loader', 'library_identity_artist_ids') }} as dest
            ({{ artist_ids | join(', ') }})
        select {{ artist_ids | join(', ') }} from {{ ref('wb_library_identity_artist_ids') }}
    {{ _upsert_tail(['library_id'], artist_ids) }}
        returning 1
    ),

    tracks as (
        select
            count(*) filter (where key_skip_reason is null) as offered,
            count(*) filter (where key_skip_reason = 'librarian') as librarian,
            count(*) filter (where key_skip_reason = 'no_cta_match') as no_cta_match,
            count(*) filter (where key_skip_reason is null and catalogue_match_count <> 1)
                as no_catalog_artist,
            count(*) filter (
                where key_skip_reason is null and position_skip_reason = 'position_ambiguous'
            ) as position_ambiguous,
            count(*) as track_keys
        from {{ ref('int_compilation__track_matches') }}
    ),

    merge_row as (
        insert into {{ source('loader', 'merges') }}
            (run_id, from_verdict_id, through_verdict_id, full_rebuild, counts)
        select
            {{ "'" ~ run_id ~ "'::uuid" if run_id else "null::uuid" }},
            new_verdicts.from_verdict_id,
            new_verdicts.through_verdict_id,
            {{ 'true' if var('merge_full_rebuild') else 'false' }},
            jsonb_build_object(
                'identity_rows_written', (select count(*) from identity_rows),
                'history_rows_written', (select count(*) from history_rows),
                'source_rows_written', (select count(*) from source_rows),
                'source_rows_deleted', (select count(*) from source_deletes),
                'library_rows_stamped', (select count(*) from stamps),
                'compilation_track_keys', tracks.track_keys,
                'compilation_track_rows_written', (select count(*) from track_links),
                'compilation_track_rows_skipped_unchanged',
                tracks.offered - (select count(*) from track_links),
                'compilation_track_rows_skipped_librarian', tracks.librarian,
                'compilation_track_rows_skipped_no_cta_match', tracks.no_cta_match,
                'compilation_track_rows_skipped_no_catalog_artist', tracks.no_catalog_artist,
                'compilation_track_position_rows_written',
                (select count(*) from track_links where writes_position),
                'compilation_track_position_rows_skipped_ambiguous', tracks.position_ambiguous,
                'artist_id_rows_written', (select count(*) from artist_id_rows)
            )
        from new_verdicts
        cross join tracks
        returning
            merge_id,
            (counts ->> 'identity_rows_written')::bigint as identity_rows,
            (counts ->> 'source_rows_written')::bigint
            + (counts ->> 'source_rows_deleted')::bigint as source_rows,
            (counts ->> 'compilation_track_rows_written')::bigint as track_rows,
            (counts ->> 'library_rows_stamped')::bigint as stamped_rows
    ),

    history_links as (
        -- The change set holds one row per library_id, so the row a history insert
        -- returned finds its verdict and run by library_id.
        insert into {{ source('loader', 'merge_history') }}
            (history_id, merge_id, run_id, verdict_id, library_id)
        select history_rows.history_id, merge_row.merge_id, archived.run_id,
            archived.verdict_id, history_rows.library_id
        from history_rows
        inner join {{ ref('wb_library_identity_history') }} as archived
            on history_rows.library_id = archived.library_id
        cross join merge_row
        returning 1
    ),

    replaced_skips as (
        -- A replay re-judges verdicts merged before: their old skip rows make way.
        delete from {{ source('loader', 'merge_skips') }}
        where verdict_id in (select verdict_id from {{ ref('int_verdicts__new') }})
        returning 1
    ),

    skip_rows as (
        insert into {{ source('loader', 'merge_skips') }}
            (merge_id, run_id, verdict_id, library_id, skip_level, reason, detail)
        select merge_row.merge_id, skip.run_id, skip.verdict_id, skip.library_id,
            skip.skip_level, skip.reason, skip.detail
        from {{ ref('wb_merge_skips') }} as skip
        cross join merge_row
        returning 1
    )

    select
        merge_row.merge_id,
        (select count(*) from skip_rows) as skipped,
        merge_row.identity_rows,
        merge_row.source_rows,
        merge_row.track_rows,
        merge_row.stamped_rows
    from merge_row
{%- endmacro %}

{% macro apply_write_back(run_id=none) -%}
    {#- Change sets are only valid against the merge state they were built on. -#}
    {%- set check -%}
        select count(*) filter (where built.merged_through is distinct from current.merged_through)
        from {{ ref('int_verdicts__new') }} as built
        cross join {{ ref('int_merges__watermark') }} as current
    {%- endset -%}
    {%- if run_query(check).columns[0].values()[0] > 0 -%}
        {{ exceptions.raise_compiler_error(
            "the merge's change sets were built before the last applied merge;"
            ~ " rebuild them (dbt build --selector merge) before the write-back") }}
    {%- endif -%}
    {%- call statement('write_back', fetch_result=true, auto_begin=true) -%}
        {#- No JIT: its compilation would cost more than the statement. -#}
        set local jit = off;
        {{ write_back_sql(run_id) }}
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {%- set result = load_result('write_back')['table'] -%}
    {%- if result and result.rows -%}
        {%- set row = result.rows[0] -%}
        {{ log("write-back applied: merge " ~ row[0], info=True) }}
        {#- The station's rule: ANALYZE a table after a bulk write (as its owner only). -#}
        {%- set written = {
            'library_identity': row[2], 'library_identity_source': row[3],
            'compilation_track_artist': row[4], 'library': row[5]} -%}
        {%- for table, rows in written.items() if rows and rows > 0 -%}
            {%- set statement_sql = analyze_if_owner(source('station', table)) -%}
            {%- if statement_sql | trim -%}
                {%- do run_query(statement_sql) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ log("write-back: nothing new to merge", info=True) }}
    {%- endif -%}
{%- endmacro %}
