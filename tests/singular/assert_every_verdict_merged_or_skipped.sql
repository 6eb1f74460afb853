-- depends_on: {{ ref('library_identity') }}
-- depends_on: {{ ref('library_identity_source') }}
-- depends_on: {{ ref('compilation_track_links') }}
-- Every landed verdict is either merged or counted as skipped (library_identity_merge_skips).
-- A row here is a verdict the merge should have written but did not.
{{ config(tags=['gate']) }}

select
    verdict_id,
    run_id,
    library_id,
    kind,
    outcome,
    reason
from {{ ref('int_verdicts__merge_outcome') }}
where
    outcome not in ('merged', 'skipped')
    {% if var('gate_run_id') -%}
        and run_id = '{{ var("gate_run_id") }}'::uuid
    {%- endif %}
