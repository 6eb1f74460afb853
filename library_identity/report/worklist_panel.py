"""The page's lead: one sentence of status, the alerts, and the worklist (sortable and
filterable by a small inline script, each kind downloadable as the CSV `library-identity
review export` writes)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from html import escape
from typing import Any

from library_identity.report.data import Report
from library_identity.review import KINDS, worklist

SHOWN_WITHOUT_SCRIPT = 100
# The worklist table's columns: (CSV header, heading, numeric).
TABLE_COLUMNS = (("kind", "kind", False), ("artist", "artist", False),
                 ("title", "title", False), ("cohort", "cohort", False),
                 ("times_tried", "tried", True), ("last_tried", "last tried", False),
                 ("why", "why", False), ("library_id", "library id", True))
JOB_COMMANDS = {"resolve": "library-identity resolve",
                "rotation_refresh": "library-identity rotation refresh",
                "rotation_backfill": "library-identity rotation backfill"}
REMEDY_STALE = "library-identity rotation backfill --stale-handles"
WRAPPED = ("artist", "title", "why")  # long words wrap; codes, counts and times do not


def utc(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def when(value: datetime | None) -> str:
    """A time in UTC, with the reader's local time beside it (filled in by the script)."""
    if value is None:
        return "at an unknown time"
    iso = value.astimezone(UTC).isoformat(timespec="seconds")
    return (f'<time datetime="{iso}">{escape(utc(value))}</time>'
            '<span class="local" data-local-for></span>')


def _n(value: Any) -> str:
    return f"{int(value):,}" if value is not None else "?"


def alert_text(alert: dict[str, Any]) -> tuple[str, str]:
    """(what holds, what to do) for one rpt_alerts row, as HTML."""
    name = alert["alert"]
    if name == "identity_gate":
        return (f"The station's identity gate fails: {_n(alert['subject_rows'])} of "
                f"{_n(alert['of_rows'])} library rows are truly unresolved; the limit is "
                f"{_n(alert['threshold'])}.",
                "Work through the unresolved albums below; each one a person sets or a run "
                "resolves counts.")
    if name == "stale_rotation_handles":
        return (f"{_n(alert['subject_rows'])} of {_n(alert['of_rows'])} rotation handles "
                f"are unknown to LML: its latest cache refresh ({when(alert['observed_at'])}) "
                "answered not_found for them.",
                f"Run <code>{REMEDY_STALE}</code>: it resolves those records' Discogs "
                "release ids again and replaces the handles.")
    if name == "cta_match_gap":
        return (f"The latest merge matched {_n(alert['subject_rows'])} of "
                f"{_n(alert['of_rows'])} compilation track keys to no credit row "
                "(compilation_cta_match_gap).",
                "LML's artist and title for those tracks differ from the station's "
                "credits; compare a few compilations' credits with LML's tracks.")
    job = str(alert["job"])
    status = name.removeprefix("last_run_").replace("_", " ")
    detail = f": {escape(str(alert['detail']))}" if alert["detail"] else ""
    return (f"The latest {escape(job.replace('_', ' '))} run {escape(status)} "
            f"({when(alert['observed_at'])}){detail}.",
            f"Run <code>{escape(JOB_COMMANDS.get(job, job))}</code> again; it carries on "
            "from what was saved.")


def alerts_html(report: Report) -> str:
    if not report.alerts:
        return ('<section class="alerts ok" aria-label="Alerts"><p>No alert: the jobs '
                "raised nothing that needs a person.</p></section>")
    items = "".join(
        f'<li data-alert="{escape(a["alert"])}"><strong>{what}</strong> <span>{todo}</span></li>'
        for a in report.alerts for what, todo in [alert_text(a)])
    return (f'<section class="alerts" aria-label="Alerts"><h2>Alerts</h2><ul>{items}</ul>'
            "</section>")


def status_sentence(report: Report) -> str:
    whole = report.coverage()
    kinds = Counter(r["kind"] for r in report.worklist)
    parts = [f"{kinds.get('unresolved', 0):,} unresolved albums",
             f"{kinds.get('refused', 0):,} identities the merge refused",
             f"{kinds.get('low_confidence', 0):,} low-confidence identities"]
    alerts = len(report.alerts)
    covered = "n/a" if whole["covered_pct"] is None else f"{whole['covered_pct']:.2f}%"
    return (f"{covered} of {whole['library_rows']:,} library rows are linked; "
            f"{sum(kinds.values()):,} need a person ({', '.join(parts)}); "
            f"{alerts} alert{'s' if alerts != 1 else ''}.")


def _cell_class(name: str, numeric: bool) -> str:
    return "num" if numeric else "text wrap" if name in WRAPPED else "text"


def _data_json(report: Report) -> str:
    rows = [worklist.cells(r) for r in report.worklist]
    text = json.dumps({"header": worklist.HEADER, "rows": rows}, ensure_ascii=False,
                      separators=(",", ":"))
    # Inside <script>: nothing in a value may close the element or open a comment.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def worklist_html(report: Report) -> str:
    counts = Counter(r["kind"].replace("_", "-") for r in report.worklist)
    index = {name: i for i, name in enumerate(worklist.HEADER)}
    heads = "".join(
        f'<th scope="col" class="{"num" if numeric else "text"}" data-col="{index[name]}" '
        f'aria-sort="none"><button type="button">{escape(label)}</button></th>'
        for name, label, numeric in TABLE_COLUMNS)
    body = []
    for row in report.worklist[:SHOWN_WITHOUT_SCRIPT]:
        cells = worklist.cells(row)
        body.append("<tr>" + "".join(
            f'<td class="{_cell_class(name, numeric)}" data-label="{escape(label)}">'
            f"{escape(cells[index[name]])}</td>" for name, label, numeric in TABLE_COLUMNS)
            + "</tr>")
    options = "".join(f'<option value="{k}">{escape(worklist.KIND_LABELS[k])} '
                      f"({counts.get(k, 0):,})</option>" for k in KINDS)
    links = " · ".join(
        f'<a class="csv" data-kind="{k}" download="worklist-{k}.csv" href="#">'
        f"{escape(worklist.KIND_LABELS[k])} ({counts.get(k, 0):,})</a>" for k in KINDS)
    total = len(report.worklist)
    return f"""<section class="panel worklist" id="worklist">
<h2>Worklist: what needs a person</h2>
<p class="note">Unresolved albums, identities the merge refused and identities in the lowest
band the merge stores. Download a list as CSV, fill its <code>decision</code> column
(<code>accept</code>, <code>reject</code> or <code>set</code> with the ids) and apply it with
<code>library-identity review apply FILE.csv</code>; the same file comes from
<code>library-identity review export --kind KIND --out FILE.csv</code>.</p>
<div class="filters">
<label>Show <select id="wl-kind"><option value="">all ({total:,})</option>{options}</select></label>
<label>Filter <input id="wl-text" type="search" placeholder="artist, title, why…"></label>
<span id="wl-count" role="status">{min(total, SHOWN_WITHOUT_SCRIPT):,} of {total:,} shown</span>
</div>
<p class="downloads">CSV: <a class="csv" data-kind="" download="worklist.csv" href="#">
everything ({total:,})</a> · {links}</p>
<div class="scroll tall" tabindex="0" role="region" aria-label="Worklist table">
<table id="wl-table" class="stack"><caption>Worklist (the first {SHOWN_WITHOUT_SCRIPT} rows
until the page's script shows them all)</caption>
<thead><tr>{heads}</tr></thead><tbody>{"".join(body)}</tbody></table></div>
<script type="application/json" id="wl-data">{_data_json(report)}</script>
</section>"""


SCRIPT = """
(() => {
  const data = JSON.parse(document.getElementById('wl-data').textContent);
  const H = data.header, col = n => H.indexOf(n);
  const kindCol = col('kind');
  const shown = [['kind', 'kind', 0], ['artist', 'artist', 0], ['title', 'title', 0],
    ['cohort', 'cohort', 0], ['times_tried', 'tried', 1], ['last_tried', 'last tried', 0],
    ['why', 'why', 0], ['library_id', 'library id', 1]];
  const LIMIT = 500;
  const quote = v => /[",\\r\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  const csv = rows => [H, ...rows].map(r => r.map(quote).join(',')).join('\\n') + '\\n';
  document.querySelectorAll('a.csv').forEach(a => {
    const rows = data.rows.filter(r => !a.dataset.kind || r[kindCol] === a.dataset.kind);
    a.href = URL.createObjectURL(new Blob([csv(rows)], {type: 'text/csv;charset=utf-8'}));
  });
  const table = document.getElementById('wl-table'), body = table.tBodies[0];
  const kind = document.getElementById('wl-kind'), text = document.getElementById('wl-text');
  const count = document.getElementById('wl-count');
  let sortCol = -1, sortDir = 1;
  const render = () => {
    const needle = text.value.trim().toLowerCase();
    let rows = data.rows.filter(r => (!kind.value || r[kindCol] === kind.value)
      && (!needle || shown.some(([n]) => r[col(n)].toLowerCase().includes(needle))));
    if (sortCol >= 0) {
      const numeric = shown.find(([n]) => col(n) === sortCol)[2];
      rows = rows.slice().sort((a, b) => sortDir * (numeric
        ? (Number(a[sortCol]) || 0) - (Number(b[sortCol]) || 0)
        : a[sortCol].localeCompare(b[sortCol])));
    }
    body.replaceChildren(...rows.slice(0, LIMIT).map(r => {
      const tr = document.createElement('tr');
      for (const [n, label, numeric] of shown) {
        const td = tr.insertCell();
        td.className = numeric ? 'num' : ['artist', 'title', 'why'].includes(n)
          ? 'text wrap' : 'text';
        td.dataset.label = label;
        td.textContent = r[col(n)];
      }
      return tr;
    }));
    count.textContent = `${Math.min(rows.length, LIMIT).toLocaleString('en')} of ` +
      `${rows.length.toLocaleString('en')} shown`;
    table.caption.textContent = `Worklist: ${rows.length.toLocaleString('en')} rows` +
      (rows.length > LIMIT ? ` (the first ${LIMIT}; filter or download for the rest)` : '');
  };
  table.tHead.querySelectorAll('th').forEach(th => th.querySelector('button')
    .addEventListener('click', () => {
      const c = Number(th.dataset.col);
      sortDir = sortCol === c ? -sortDir : 1;
      sortCol = c;
      table.tHead.querySelectorAll('th').forEach(h => h.setAttribute('aria-sort', 'none'));
      th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      render();
    }));
  kind.addEventListener('change', render);
  text.addEventListener('input', render);
  render();
  document.querySelectorAll('time').forEach(t => {
    const span = t.nextElementSibling;
    if (span && span.hasAttribute('data-local-for')) {
      span.textContent = ` (${new Date(t.getAttribute('datetime')).toLocaleString()} local)`;
    }
  });
})();
"""
