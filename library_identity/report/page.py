"""The coverage report as one self-contained HTML page: inline CSS, SVG charts and one
small inline script (the worklist's sorting, filtering and CSV links, local times);
nothing is fetched when it is viewed.

It leads with what needs a person (a status sentence, the alerts, the worklist), then
today's breakdowns, then the trends over runs.

Every figure taken from a report model is marked `data-metric="<section>.<key>.<column>"`
with its raw value in `data-value`, so a test (or a scraper) can check the page against
`library-identity report --format json`. Figures computed on the page (sums over bands)
are marked `data-derived` instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from library_identity.dbt_names import project_vars
from library_identity.report import worklist_panel
from library_identity.report.data import Report, csv_value
from library_identity.report.sections import SECTIONS

RUN_TABLE_LIMIT = 25
SECTION_BY_NAME = {s.name: s for s in SECTIONS}
COVERAGE_MEASURES = (
    ("library_rows", "library rows"),
    ("ever_attempted", "ever attempted"),
    ("resolved", "resolved"),
    ("compilation", "compilation"),
    ("unresolved", "unresolved"),
    ("merge_skipped", "merge skipped (verdict not stored)"),
    ("never_attempted", "never attempted"),
    ("covered", "covered (resolved + compilation)"),
    ("covered_pct", "covered %"),
    ("attempted_pct", "attempted %"),
    ("legacy_scope_rows", "in the old canonical-only scope"),
    ("legacy_scope_pct", "old scope %"),
    ("without_artist_name", "without an artist name (never sent)"),
)
COHORT_LABELS = {"va": "V/A", "non_va": "non-V/A", "all": "whole library"}
# The run's merge's compilation counters (rpt_run_history), as the station names them.
COMPILATION_COUNTERS = (
    ("compilation_track_rows_written", "written"),
    ("compilation_track_rows_skipped_unchanged", "unchanged"),
    ("compilation_track_rows_skipped_librarian", "librarian"),
    ("compilation_track_rows_skipped_no_cta_match", "no credit row"),
    ("compilation_track_rows_skipped_no_catalog_artist", "no catalogue artist"),
    ("compilation_track_position_rows_written", "positions written"),
    ("compilation_track_position_rows_skipped_ambiguous", "positions ambiguous"),
)


def fmt(value: Any, column: str = "") -> str:
    """How a value reads on the page and in the terminal; percentages are the columns
    named *_pct or *_pct_after."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S %Z}".strip()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}%" if "_pct" in column else f"{value:,.1f}"
    return str(value)


def metric(section: str, row: dict[str, Any], column: str, tag: str = "td") -> str:
    value = row[column]
    key = SECTION_BY_NAME[section].key_of(row)
    name = ".".join(p for p in (section, key, column) if p)
    text = ' class="text"' if isinstance(value, str) else ""
    return (f'<{tag}{text} data-metric="{escape(name)}" data-value="{escape(csv_value(value))}">'
            f"{escape(fmt(value, column))}</{tag}>")


def derived(name: str, value: Any, column: str = "", tag: str = "td") -> str:
    return (f'<{tag} data-derived="{escape(name)}" data-value="{escape(csv_value(value))}">'
            f"{escape(fmt(value, column))}</{tag}>")


def _labelled(row: str, headers: Sequence[str]) -> str:
    """The row's cells, each carrying its column's heading (shown beside the value when a
    narrow screen stacks the table)."""
    index = iter(range(len(headers)))

    def label(match: re.Match[str]) -> str:
        i = next(index, len(headers) - 1)
        return f'<{match.group(1)} data-label="{escape(headers[i] or "")}"'

    return re.sub(r"<(td|th)(?=[\s>])", label, row)


def _table(headers: Sequence[str], rows: Sequence[str], caption: str = "",
           text_columns: int = 1) -> str:
    """text_columns: how many leading columns hold words, aligned left with their headers."""
    head = "".join(f'<th scope="col" class="text">{escape(h)}</th>' if i < text_columns
                   else f'<th scope="col">{escape(h)}</th>' for i, h in enumerate(headers))
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    body = "".join(_labelled(r, headers) for r in rows) or (
        f'<tr><td colspan="{len(headers)}" class="empty">none yet</td></tr>')
    return f'<table class="stack">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _waiting_compilations(report: Report) -> int:
    return sum(1 for r in report.worklist if r["reason"] == "tracks_not_attempted")


def _kpis(report: Report) -> str:
    whole = report.coverage()
    rotation = report.rotation()
    items = [
        ("library rows", metric("library_coverage", whole, "library_rows", "strong"), True),
        ("covered", metric("library_coverage", whole, "covered_pct", "strong"), True),
        ("attempted", metric("library_coverage", whole, "attempted_pct", "strong"), True),
        ("resolved", metric("library_coverage", whole, "resolved", "strong"), True),
        ("compilations", metric("library_coverage", whole, "compilation", "strong"), True),
        (f"unresolved, of which {_waiting_compilations(report):,} compilations wait for "
         "track lookups", metric("library_coverage", whole, "unresolved", "strong"), True),
        ("merge skipped", metric("library_coverage", whole, "merge_skipped", "strong"),
         True),
        ("never attempted", metric("library_coverage", whole, "never_attempted", "strong"),
         True),
        ("stale identities", derived("identity_age.stale_identities.sum",
                                     report.stale_identities(), tag="strong"), True),
    ]
    if rotation is not None:
        items.append((f"rotation coverage (gate {rotation['gate_min_pct']:g}%)",
                      metric("rotation_coverage", rotation, "resolvable_coverage_pct", "strong"),
                      bool(rotation["gate_passes"]) and not _stale_handles(report)))
    cards = "".join(f'<div class="kpi{"" if ok else " bad"}">{value}<span>{escape(label)}</span>'
                    "</div>" for label, value, ok in items)
    return f'<section class="kpis" aria-label="Today in figures">{cards}</section>'


def _stale_handles(report: Report) -> int:
    return sum(int(a["subject_rows"] or 0) for a in report.alerts
               if a["alert"] == "stale_rotation_handles")


def _runs_table(report: Report) -> str:
    runs = report.sections["run_history"][::-1][:RUN_TABLE_LIMIT]
    columns = ("mode", "status", "started_at", "duration_s", "scanned", "resolved",
               "resolved_compilation", "unresolved", "skipped", "covered_pct_after",
               "attempted_pct_after")
    rows = ["<tr>" + metric("run_history", r, "run_number", "th")
            + "".join(metric("run_history", r, c) for c in columns) + "</tr>" for r in runs]
    total = len(report.sections["run_history"])
    caption = (f"latest {len(runs)} of {total} runs" if total > len(runs) else "")
    return _table(("#", "mode", "status", "started", "seconds", "scanned", "resolved",
                   "compilation", "unresolved", "skipped", "covered after", "attempted after"),
                  rows, caption, text_columns=3)


def _compilation_table(report: Report) -> str:
    runs = report.sections["run_history"][::-1][:RUN_TABLE_LIMIT]
    rows = ["<tr>" + metric("run_history", r, "run_number", "th") + metric("run_history", r, "mode")
            + "".join(metric("run_history", r, c) for c, _ in COMPILATION_COUNTERS) + "</tr>"
            for r in runs]
    return _table(("#", "mode", *(label for _, label in COMPILATION_COUNTERS)), rows,
                  text_columns=2)


def _merge_skipped_table(report: Report) -> str:
    cohorts = ("va", "non_va", "all")
    by_key = {(r["cohort"], r["reason"]): r for r in report.sections["library_merge_skipped"]}
    rows = []
    for reason, _ in report.merge_skipped_reasons():
        cells = [f"<th>{escape(reason)}</th>"]
        for cohort in cohorts:
            row = by_key.get((cohort, reason))
            cells.append(metric("library_merge_skipped", row, "library_rows") if row
                         else '<td class="zero">0</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(("reason", *(COHORT_LABELS[c] for c in cohorts)), rows)


def _coverage_table(report: Report) -> str:
    cohorts = ("va", "non_va", "all")
    rows = ["<tr><th>" + escape(label) + "</th>"
            + "".join(metric("library_coverage", report.coverage(c), column) for c in cohorts)
            + "</tr>" for column, label in COVERAGE_MEASURES]
    return _table(("", *(COHORT_LABELS[c] for c in cohorts)), rows)


def _banded_table(report: Report, section: str, dimension: str, measure: str,
                  extra: Sequence[str] = ()) -> str:
    bands = report.band_labels(present_in=section)
    resolved = report.coverage()["resolved"]
    rows = []
    for name, total, _ in report.totals_by(section, dimension, measure):
        cells = [f"<th>{escape(name)}</th>", derived(f"{section}.{name}.{measure}", total)]
        share = round(100.0 * total / resolved, 2) if resolved else None
        cells.append(derived(f"{section}.{name}.share_of_resolved_pct", share,
                             "share_of_resolved_pct"))
        by_band = {r["confidence_band"]: r for r in report.sections[section]
                   if r[dimension] == name}
        for band in bands:
            cells.append(metric(section, by_band[band], measure) if band in by_band
                         else '<td class="zero">0</td>')
        for column in extra:
            cells.append(derived(f"{section}.{name}.{column}",
                                 sum(int(r[column]) for r in by_band.values())))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    headers = (dimension, "rows", "% of resolved", *bands,
               *(c.replace("_", " ") for c in extra))
    return _table(headers, rows)


def _age_table(report: Report) -> str:
    rows = ["<tr><th>" + escape(r["age_bucket"]) + "</th>"
            + "".join(metric("identity_age", r, c)
                      for c in ("identities", "resolved", "compilation", "stale_identities"))
            + "</tr>" for r in report.sections["identity_age"]]
    return _table(("age", "covered rows", "resolved", "compilation", "stale"), rows)


def _churn_table(report: Report) -> str:
    runs = report.sections["run_churn"][::-1][:RUN_TABLE_LIMIT]
    columns = ("mode", "verdicts", "first_attempts", "appeared", "changed", "unchanged",
               "disappeared", "not_covered", "net_covered_change", "history_archived")
    rows = ["<tr>" + metric("run_churn", r, "run_number", "th")
            + "".join(metric("run_churn", r, c) for c in columns) + "</tr>" for r in runs]
    return _table(("#", "mode", "verdicts", "first attempts", "appeared", "changed",
                   "unchanged", "disappeared", "not covered", "net change", "history rows"),
                  rows, text_columns=2)


def _rotation_table(report: Report) -> str:
    row = report.rotation()
    if row is None:
        return _table(("measure", "value"), [])
    labels = (("active", "active rotation rows"),
              ("active_with_discogs", "with a Discogs release id"),
              ("active_with_lml", "with a release id and an LML identity"),
              ("active_missing_lml", "with a release id but no LML identity"),
              ("active_without_lml_identity", "without an LML identity"),
              ("resolvable_coverage_pct", "resolvable coverage"),
              ("gate_min_pct", "gate"),
              ("gate_passes", "gate passes"),
              ("last_warmed_at", "last cache warm"))
    rows = [f"<tr><th>{escape(label)}</th>{metric('rotation_coverage', row, column)}</tr>"
            for column, label in labels]
    rows.append("<tr><th>handles LML no longer knows (latest refresh: not_found)</th>"
                + derived("rotation_coverage.stale_handles", _stale_handles(report)) + "</tr>")
    return _table(("measure", "value"), rows)


def _merge_skips_table(report: Report) -> str:
    rows = ["<tr>" + metric("merge_skips", r, "skip_level", "th")
            + f'<td class="text">{escape(str(r["reason"]))}</td>'
            + metric("merge_skips", r, "items") + metric("merge_skips", r, "library_rows")
            + "</tr>" for r in report.sections["merge_skips"]]
    return _table(("level", "reason", "items", "library rows"), rows, text_columns=2)


def _anomalies_table(report: Report) -> str:
    rows = [f'<tr><th>{escape(str(r["description"]))}</th>'
            + metric("station_anomalies", r, "station_rows") + "</tr>"
            for r in report.sections["station_anomalies"]]
    return _table(("anomaly", "station rows"), rows)


CSS = """
:root { color-scheme: light; --ink: #212529; --muted: #555d65; --line: #dee2e6;
        --panel: #ffffff; --bg: #f5f6f8; --accent: #1f7a6f; --bad: #b00d1b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
             "Liberation Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 4px; color: var(--muted); }
header p.status { color: var(--ink); font-size: 16px; }
h2 { font-size: 17px; margin: 0 0 6px; }
code { font-size: 12.5px; background: #eef0f3; padding: 0 3px; border-radius: 3px;
       overflow-wrap: anywhere; }
.note { color: var(--muted); margin: 0 0 12px; }
.alerts { background: #fff4f4; border: 1px solid #f1aeb5; border-radius: 8px;
          padding: 12px 18px; margin: 16px 0; }
.alerts.ok { background: #f1faf7; border-color: #9fd3c7; }
.alerts ul { margin: 0; padding-left: 18px; }
.alerts li { margin: 6px 0; }
.alerts p { margin: 0; }
.local { color: var(--muted); }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(100px, 1fr)); gap: 8px;
        margin: 20px 0; }
.kpi { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
       padding: 10px 8px; min-width: 0; }
.kpi strong { display: block; font-size: clamp(15px, 1.4vw, 18px); white-space: nowrap;
              font-variant-numeric: tabular-nums; }
.kpi span { color: var(--muted); font-size: 12px; }
.kpi.bad { border-color: #f1aeb5; }
.kpi.bad strong { color: var(--bad); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
         padding: 16px 18px; margin: 16px 0; }
svg.chart { display: block; width: 100%; height: auto; max-width: 860px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
.filters input, .filters select { font: inherit; padding: 3px 6px; max-width: 100%; }
.downloads { margin: 8px 0 0; }
a { color: #0b5ed7; }
table { border-collapse: collapse; margin-top: 12px; width: 100%;
        font-variant-numeric: tabular-nums; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding-bottom: 4px; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th:first-child, thead th { text-align: left; }
thead th { color: var(--muted); font-weight: 600; text-align: right; }
thead th:first-child, thead th.text { text-align: left; }
thead th button { font: inherit; color: inherit; background: none; border: 0; padding: 0;
                  cursor: pointer; text-decoration: underline dotted; }
td.zero, td.empty { color: var(--muted); }
td.text, td.empty { text-align: left; }
#wl-table td.wrap { white-space: normal; min-width: 8em; }
.scroll.tall { max-height: 560px; overflow: auto; }
.scroll, .chart-wrap { overflow-x: auto; }
.scroll:focus, .chart-wrap:focus { outline: 2px solid #0b5ed7; outline-offset: 2px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media (max-width: 600px) {
  main { padding: 16px 10px 32px; }
  .panel { padding: 12px 10px; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden;
                      clip: rect(0 0 0 0); }
  table.stack, table.stack tbody, table.stack tr { display: block; width: 100%; }
  table.stack tr { border-bottom: 2px solid var(--line); padding: 4px 0; }
  table.stack td, table.stack th { display: flex; justify-content: space-between; gap: 12px;
                                   border: 0; padding: 2px 4px; text-align: right;
                                   white-space: normal; }
  table.stack td[data-label]::before, table.stack th[data-label]::before {
    content: attr(data-label); color: var(--muted); text-align: left; font-weight: 400; }
  table.stack th[data-label=""]::before { content: none; }
  table.stack td.empty { display: block; }
  table.stack caption { display: block; }
  .chart-wrap svg.chart { min-width: 600px; }
}
"""


def _panel(name: str, note: str, chart: str, table: str) -> str:
    """A panel: its chart, and its table in a keyboard-focusable scroll region; a table
    without a caption takes the panel's name."""
    if "<caption>" not in table:
        table = table.replace('<table class="stack">',
                              f'<table class="stack"><caption>{escape(name)}</caption>', 1)
    if chart:  # on a phone the chart keeps a readable size and scrolls sideways
        chart = (f'<div class="chart-wrap" tabindex="0" role="region" '
                 f'aria-label="{escape(name)} chart">{chart}</div>')
    return (f'<section class="panel"><h2>{escape(name)}</h2><p class="note">{escape(note)}</p>'
            f'{chart}<div class="scroll" tabindex="0" role="region" '
            f'aria-label="{escape(name)} table">{table}</div></section>')


def render(report: Report, title: str = "Library identity coverage") -> str:
    from library_identity.report import charts  # matplotlib: only the page draws

    svg = charts.render_all(report)
    whole = report.coverage()
    panels = [
        ("Identity status",
         f"{fmt(whole['covered'])} of {fmt(whole['library_rows'])} library rows are covered. "
         "Compilations have per-track identities instead of an artist identity. Unresolved "
         "counts every row without an identity today, compilations whose tracks LML has not "
         "looked up yet included.",
         svg["status_split"], _coverage_table(report)),
        ("Verdicts not stored",
         "Rows whose latest verdict is an artist identity that the merge did not store, "
         "by reason: they count as merge skipped, not resolved, and return after the "
         "stale window like resolved rows.",
         "", _merge_skipped_table(report)),
        ("Matched via: method",
         "The stored identity of every resolved row, by LML method and confidence band. "
         f"Bands under {project_vars()['identity_confidence_gate']:.2f} count as unresolved "
         "in the station's identity gate.",
         svg["by_method"],
         _banded_table(report, "identity_by_method", "method", "identities",
                       ("in_method_band",))),
        ("Matched via: source",
         "Source entries of resolved rows: how many carry a Discogs, MusicBrainz, Wikidata, "
         "Spotify, Apple Music or Bandcamp id, and at what confidence.",
         svg["by_source"],
         _banded_table(report, "identity_by_source", "source", "library_rows")),
        ("Identity age",
         "Days since each covered row was last resolved. A full run re-checks stale rows.",
         svg["identity_age"], _age_table(report)),
        ("Rotation",
         "Active rotation rows with an LML release identity, of those with a Discogs "
         "release id, against the readiness gate, and the handles LML no longer knows.",
         svg["rotation_gate"], _rotation_table(report)),
        ("Not written by the merge",
         "Verdicts, sources and compilation tracks the merges skipped, by reason; "
         "other_writer marks rows another writer owns, which the project leaves alone.",
         "", _merge_skips_table(report)),
        ("Station anomalies",
         "States of the station's identity tables the project did not cause and does not "
         "repair. Reported only; they never fail a run.",
         "", _anomalies_table(report)),
        ("Coverage over runs",
         "Share of today's library covered (resolved or a compilation with per-track "
         "identities) and attempted after each resolve run. A run's unresolved counts LML's "
         "no-match answers; the unresolved card above also counts the compilations still "
         "waiting for track lookups.",
         svg["coverage_over_runs"], _runs_table(report)),
        ("Compilation links per run",
         "What each run's merge did with the compilation tracks LML answered: credit rows "
         "linked, already linked the same way, left to a librarian, without a credit row "
         "or a single catalogue artist, and positions written or ambiguous.",
         "", _compilation_table(report)),
        ("Identity churn per run",
         "What each run's verdicts did to the rows they answered.",
         "", _churn_table(report)),
    ]
    body = "".join(_panel(*panel) for panel in panels)
    generated = worklist_panel.when(report.generated_at)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{escape(title)}</h1>
<p class="status">{escape(worklist_panel.status_sentence(report))}</p>
<p>Generated {generated} from the database's report models.</p></header>
{worklist_panel.alerts_html(report)}
{worklist_panel.worklist_html(report)}
{_kpis(report)}
{body}
<footer>library-identity report · dbt models in models/marts/reports · numbers as of
{escape(worklist_panel.utc(report.generated_at))}</footer>
</main>
<script>{worklist_panel.SCRIPT}</script>
</body>
</html>
"""
