-- Rotation resolvable coverage >= rotation_coverage_min_pct (default 99). Warns by
-- default; set var rotation_coverage_severity: error to make it fail the build.
{{ config(tags=['gate'], severity=var('rotation_coverage_severity', 'warn')) }}

select
    active,
    active_with_discogs,
    active_with_lml,
    resolvable_coverage_pct
from {{ ref('rotation_coverage') }}
where resolvable_coverage_pct < {{ var('rotation_coverage_min_pct') }}
