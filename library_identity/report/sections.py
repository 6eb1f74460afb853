"""The report's sections: which report model each reads and how its rows are keyed. Plain
values, so the command line names the sections without loading the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    """One report model as the report shows it."""

    name: str  # JSON key and CSV section
    model: str  # the dbt model in models/marts/reports
    keys: tuple[str, ...]  # columns that identify a row (none: a one-row section)
    order_by: tuple[str, ...] = ()

    def key_of(self, row: dict[str, Any]) -> str:
        return "/".join(str(row[k]) for k in self.keys)


SECTIONS: tuple[Section, ...] = (
    Section("library_coverage", "rpt_library_coverage", ("cohort",), ("cohort_order",)),
    Section("library_merge_skipped", "rpt_library_merge_skipped", ("cohort", "reason"),
            ("cohort_order", "reason")),
    Section("identity_by_method", "rpt_identity_by_method", ("method", "confidence_band"),
            ("method_order", "method", "band_order")),
    Section("identity_by_source", "rpt_identity_by_source", ("source", "confidence_band"),
            ("source_order", "source", "band_order")),
    Section("identity_age", "rpt_identity_age", ("age_bucket",), ("bucket_order",)),
    Section("run_history", "rpt_run_history", ("run_id",), ("run_number",)),
    Section("run_churn", "rpt_run_churn", ("run_id",), ("run_number",)),
    Section("rotation_coverage", "rpt_rotation_coverage", ()),
    Section("merge_skips", "rpt_merge_skips", ("skip_level", "reason"),
            ("skip_level", "reason")),
    Section("station_anomalies", "rpt_station_anomalies", ("anomaly",), ("anomaly",)),
)
SECTION_NAMES = tuple(s.name for s in SECTIONS)
