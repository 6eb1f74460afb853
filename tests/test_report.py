"""The coverage report end to end: a seeded sample resolved through the LML stand-in and
merged by dbt, then `library-identity report` as JSON, CSV, terminal tables and an HTML
page that headless Chromium renders. Every format must show the same numbers, and those
must match counts taken straight from the station and loader tables."""

from __future__ import annotations

import base64
import contextlib
import csv
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI

from library_identity import migrate
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin import refresh as standin_refresh
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.demo.standin.verdicts import METHOD_BANDS
from library_identity.lml.client import LMLClient
from library_identity.report import data
from library_identity.report.data import SECTIONS, csv_value
from library_identity.report.page import fmt
from library_identity.resolve.resolve_job import ResolveOptions, resolve

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key-report-4c3b2a"
N_ROWS = 2000
SHIFT_DAYS = 8  # the legacy run happened this long ago
CHARTS = 6
# Share of single-artist answers the stand-in sends just under their method's band:
# verdicts the merge must skip, so the report shows them as merge_skipped.
OUT_OF_BAND_RATE = 0.05
COMPILATION_COUNTERS = (
    "compilation_track_rows_written", "compilation_track_rows_skipped_unchanged",
    "compilation_track_rows_skipped_librarian", "compilation_track_rows_skipped_no_cta_match",
    "compilation_track_rows_skipped_no_catalog_artist", "compilation_track_position_rows_written",
    "compilation_track_position_rows_skipped_ambiguous")


# -- the sample: a legacy run some days ago, then a full run with the merge ---------------
@pytest.fixture(scope="module")
def sample(make_database: Callable[[], Database]) -> Database:
    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, N_ROWS)
    with StandIn(StandInConfig(api_key=KEY, out_of_band_rate=OUT_OF_BAND_RATE)) as standin, \
            LMLClient(base_url=standin.url, api_key=KEY) as client:
        legacy = resolve(db, client, ResolveOptions(mode="legacy", concurrency=2), merge=False)
        assert legacy.status == "succeeded"
        with db.connect() as conn:
            conn.execute("update identity_loader.raw_verdicts set attempted_at = attempted_at "
                         f"- interval '{SHIFT_DAYS} days'")
            conn.execute(f"update identity_loader.runs set started_at = started_at - interval "
                         f"'{SHIFT_DAYS} days', finished_at = finished_at - interval "
                         f"'{SHIFT_DAYS} days'")
        # Resolved rows of the legacy run are not due yet (stale after 10 days); its
        # unresolved rows are (retried after 7), so some rows get a second verdict.
        full = resolve(db, client, ResolveOptions(stale_days=10, concurrency=2), merge=True)
    assert full.status == "succeeded" and full.merge is not None, full.merge
    assert full.merge.success, full.merge.failures
    return db


def cli(db: Database, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": db.conninfo, "COLUMNS": "240"}
    out = subprocess.run([*CLI, "report", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def as_json(sample: Database) -> dict[str, Any]:
    # The first call rebuilds the report views with dbt; the others read them as they are.
    return json.loads(cli(sample, "--format", "json"))


def flat(report: dict[str, Any]) -> dict[str, Any]:
    """section.key.column -> value, the page's data-metric names."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        for row in report[section.name]:
            key = section.key_of(row)
            for column, value in row.items():
                out[".".join(p for p in (section.name, key, column) if p)] = value
    return out


# -- straight from the tables ----------------------------------------------------------
STATUS_SQL = """
    with latest as (
        select distinct on (library_id) library_id, verdict_id, kind, tracks_contract_version,
               tracks_attempted, result
        from identity_loader.raw_verdicts
        order by library_id, attempted_at desc, verdict_id desc
    )
    select l.id,
           case
               when v.kind = 'single_artist' and s.reason is null and li.library_id is not null
                    and v.verdict_id <= (select max(through_verdict_id)
                                         from identity_loader.merges)
                   then 'resolved'
               when v.kind = 'single_artist' then 'merge_skipped'
               when v.kind = 'compilation' and v.tracks_contract_version = 1
                    and (v.tracks_attempted or jsonb_array_length(v.result -> 'tracks') > 0)
                   then 'compilation'
               when v.library_id is not null then 'unresolved'
               when li.library_id is not null then 'resolved'
               when l.unresolved_attempted_at is not null then 'unresolved'
               else 'never_attempted'
           end as status,
           s.reason
    from wxyc_schema.library l
    left join latest v on v.library_id = l.id
    left join wxyc_schema.library_identity li on li.library_id = l.id
    left join identity_loader.merge_skips s
        on s.verdict_id = v.verdict_id and s.skip_level = 'verdict'
"""
BAND_SQL = """
    case
        when round(c::numeric, 3) >= 1 then '1.00'
        when round(c::numeric, 3) >= 0.9 then '0.90-0.99'
        when round(c::numeric, 3) >= 0.8 then '0.80-0.89'
        when round(c::numeric, 3) >= 0.7 then '0.70-0.79'
        when round(c::numeric, 3) >= 0.6 then '0.60-0.69'
        else '< 0.60'
    end
"""


def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query).fetchall()


def direct_counts(db: Database) -> dict[str, Any]:
    status = dict(rows(db, f"select status, count(*) from ({STATUS_SQL}) s group by 1"))
    resolved = f"select id from ({STATUS_SQL}) s where status = 'resolved'"
    by_method = {(m, b): n for m, b, n in rows(db, f"""
        select li.method, {BAND_SQL.replace('c::', 'li.confidence::')}, count(*)
        from wxyc_schema.library_identity li where li.library_id in ({resolved})
        group by 1, 2""")}
    merge_skipped = dict(rows(db, f"""select reason, count(*) from ({STATUS_SQL}) s
        where status = 'merge_skipped' group by 1"""))
    by_source = {(s, b): n for s, b, n in rows(db, f"""
        select s.source, {BAND_SQL.replace('c::', 's.confidence::')}, count(*)
        from wxyc_schema.library_identity_source s where s.library_id in ({resolved})
        group by 1, 2""")}
    # Last resolution: the station row or the latest resolving verdict, whichever is later.
    stale = rows(db, f"""
        select count(*) from ({STATUS_SQL}) s
        left join wxyc_schema.library_identity li on li.library_id = s.id
        left join lateral (
            select max(attempted_at) as at from identity_loader.raw_verdicts v
            where v.library_id = s.id and (v.kind = 'single_artist' or (v.kind = 'compilation'
                  and v.tracks_contract_version = 1 and v.tracks_attempted))
        ) v on true
        where s.status in ('resolved', 'compilation')
          and greatest(li.last_verified_at, v.at) < now() - interval '7 days'""")[0][0]
    runs = {str(r[0]): r[1:] for r in rows(db, """
        select r.run_id, (r.counters->'total'->>'scanned')::int,
               (r.counters->'total'->>'rows_resolved')::int,
               (r.counters->'total'->>'rows_unresolved')::int,
               (select count(*) from identity_loader.raw_verdicts v where v.run_id = r.run_id)
        from identity_loader.runs r where r.job = 'resolve'""")}
    compilation = {str(run_id): merge for run_id, merge in rows(db, """
        select run_id, counters->'merge' from identity_loader.runs where job = 'resolve'""")}
    rotation = rows(db, """
        select count(*) filter (where active),
               count(*) filter (where active and discogs_release_id is not null),
               count(*) filter (where active and discogs_release_id is not null
                                and lml_identity_id is not null)
        from (select *, kill_date is null or kill_date > current_date as active
              from wxyc_schema.rotation) r""")[0]
    return {"library_rows": sum(status.values()), "status": status, "by_method": by_method,
            "by_source": by_source, "stale": stale, "runs": runs, "rotation": rotation,
            "merge_skipped": merge_skipped, "compilation": compilation}


def test_report_session_reads_without_jit(sample: Database) -> None:
    # Compiling the report views' (overestimated) plans costs seconds on servers with JIT.
    with data.connect(sample) as conn:
        assert conn.execute("show jit").fetchone() == ("off",)
        assert conn.execute("show statement_timeout").fetchone() == (
            f"{data.STATEMENT_TIMEOUT_MS // 60_000}min",)


def test_json_matches_direct_counts(sample: Database, as_json: dict[str, Any]) -> None:
    direct = direct_counts(sample)
    whole = next(r for r in as_json["library_coverage"] if r["cohort"] == "all")
    assert whole["library_rows"] == direct["library_rows"] == N_ROWS
    for state in ("resolved", "compilation", "unresolved", "merge_skipped", "never_attempted"):
        assert whole[state] == direct["status"].get(state, 0), state
    assert whole["covered_pct"] == round(
        100 * (whole["resolved"] + whole["compilation"]) / N_ROWS, 2)
    cohorts = [r for r in as_json["library_coverage"] if r["cohort"] != "all"]
    for column in ("library_rows", "resolved", "compilation", "unresolved", "merge_skipped",
                   "never_attempted"):
        assert sum(r[column] for r in cohorts) == whole[column], column
    # Verdicts the merge did not store are merge_skipped with their reason, not resolved.
    skipped = {r["reason"]: r["library_rows"] for r in as_json["library_merge_skipped"]
               if r["cohort"] == "all"}
    assert skipped == direct["merge_skipped"]
    # Every row whose latest verdict LML sent outside its method's band, and only those.
    latest = rows(sample, """
        select distinct on (library_id) kind, method, confidence
        from identity_loader.raw_verdicts
        order by library_id, attempted_at desc, verdict_id desc""")
    out_of_band = sum(1 for kind, method, confidence in latest if kind == "single_artist"
                      and not METHOD_BANDS[method][0] <= confidence <= METHOD_BANDS[method][1])
    assert skipped["out_of_band"] == out_of_band > 0
    assert sum(skipped.values()) == whole["merge_skipped"]
    for cohort in cohorts:
        assert sum(r["library_rows"] for r in as_json["library_merge_skipped"]
                   if r["cohort"] == cohort["cohort"]) == cohort["merge_skipped"]

    assert {(r["method"], r["confidence_band"]): r["identities"]
            for r in as_json["identity_by_method"]} == direct["by_method"]
    assert sum(r["identities"] for r in as_json["identity_by_method"]) == whole["resolved"]
    assert {(r["source"], r["confidence_band"]): r["library_rows"]
            for r in as_json["identity_by_source"]} == direct["by_source"]

    age = as_json["identity_age"]
    assert sum(r["identities"] for r in age) == whole["covered"]
    assert sum(r["stale_identities"] for r in age) == direct["stale"] > 0
    assert {r["age_bucket"] for r in age if r["identities"]} == {"< 1 day", "7-30 days"}

    history = as_json["run_history"]
    assert [r["mode"] for r in history] == ["legacy", "full"]
    for run in history:
        scanned, resolved, unresolved, verdicts = direct["runs"][run["run_id"]]
        assert (run["scanned"], run["resolved"], run["unresolved"], run["verdicts"]) == (
            scanned, resolved, unresolved, verdicts)
        merge = direct["compilation"][run["run_id"]]
        for counter in COMPILATION_COUNTERS:
            assert run[counter] == (merge[counter] if merge else None), counter
    assert history[0]["compilation_track_rows_written"] is None  # merged by the next run
    assert history[-1]["compilation_track_rows_written"] > 0
    last = history[-1]
    for state in ("resolved", "compilation", "unresolved", "merge_skipped", "never_attempted"):
        assert last[f"{state}_after"] == whole[state], state
    assert last["covered_pct_after"] == whole["covered_pct"]
    assert history[0]["covered_pct_after"] < last["covered_pct_after"]

    churn = as_json["run_churn"]
    assert sum(r["net_covered_change"] for r in churn) == whole["covered"]
    assert churn[-1]["first_attempts"] < churn[-1]["verdicts"]  # legacy misses were retried

    rotation = as_json["rotation_coverage"][0]
    active, with_discogs, with_lml = direct["rotation"]
    assert (rotation["active"], rotation["active_with_discogs"], rotation["active_with_lml"]
            ) == (active, with_discogs, with_lml)
    assert rotation["resolvable_coverage_pct"] == round(100 * with_lml / with_discogs, 2)
    assert rotation["gate_passes"] == (rotation["resolvable_coverage_pct"] >= 99)


def test_csv_and_terminal_tables_agree_with_json(sample: Database,
                                                 as_json: dict[str, Any]) -> None:
    values = flat(as_json)
    lines = cli(sample, "--no-refresh", "--format", "csv").splitlines()
    assert lines[0] == "section,key,metric,value"
    for section, key, column, value in (line.split(",", 3) for line in lines[1:]):
        assert value == csv_value(values[".".join(p for p in (section, key, column) if p)])
    assert len(lines) - 1 == sum(
        len(r) - len(s.keys) for s in SECTIONS for r in as_json[s.name])

    text = cli(sample, "--no-refresh")
    coverage = {r["cohort"]: r for r in as_json["library_coverage"]}

    def cells(label: str) -> list[str]:
        line = next(line for line in text.splitlines() if re.match(rf"\| {re.escape(label)} +\|",
                                                                    line))
        return [c.strip() for c in line.strip("| ").split("|")][1:]

    for column, label in (("library_rows", "library rows"), ("resolved", "resolved"),
                          ("compilation", "compilation"), ("unresolved", "unresolved"),
                          ("merge_skipped", "merge skipped (verdict not stored)"),
                          ("never_attempted", "never attempted"), ("covered_pct", "covered %")):
        assert cells(label) == [fmt(coverage[c][column], column)
                                for c in ("va", "non_va", "all")], label
    skipped = {(r["cohort"], r["reason"]): r["library_rows"]
               for r in as_json["library_merge_skipped"]}
    for reason in {reason for _, reason in skipped}:
        assert cells(reason) == [fmt(skipped.get((c, reason), 0))
                                 for c in ("va", "non_va", "all")], reason
    latest = as_json["run_history"][-1]
    line = next(line for line in text.splitlines()
                if re.match(rf"\| #{latest['run_number']} +\| +full +\| +\d", line))
    assert [c.strip() for c in line.strip("| ").split("|")][2:] == [
        fmt(latest[counter]) for counter in COMPILATION_COUNTERS]
    for method in {r["method"] for r in as_json["identity_by_method"]}:
        total = sum(r["identities"] for r in as_json["identity_by_method"]
                    if r["method"] == method)
        assert cells(method)[0] == fmt(total)
    rotation = as_json["rotation_coverage"][0]
    assert cells("resolvable coverage") == [fmt(rotation["resolvable_coverage_pct"],
                                                "resolvable_coverage_pct")]


# -- the page, in headless Chromium ------------------------------------------------------
def chromium_binary() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("headless Chromium is needed to check the report page and was not found: "
                "install Debian's chromium package (scripts/test does: apt-get install -y "
                "chromium) or point CHROMIUM at a Chromium binary")


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the
    child, --remote-debugging-pipe): no port, no extra library."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            # Move both ends above 4 first, so neither dup2 overwrites the other.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--no-default-browser-check",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             timeout: float = 30, session: bool = True) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._read(deadline))

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", session=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


PAGE_PROBE = """(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height,
            shapes: svg.querySelectorAll('path, use, rect, text').length};
  });
  const cells = el => [...document.querySelectorAll(el)];
  return {
    charts,
    metrics: cells('[data-metric]').map(e => [e.dataset.metric, e.dataset.value,
                                              e.textContent]),
    derived: cells('[data-derived]').map(e => [e.dataset.derived, e.dataset.value,
                                               e.textContent]),
    external: cells('[src], link[href], script[src]').length,
    height: document.documentElement.scrollHeight,
    // Rows the headline cards wrap onto, and table cells aligned unlike their header.
    kpiRows: new Set(cells('.kpi').map(e => e.getBoundingClientRect().top)).size,
    misaligned: cells('table').flatMap(table => {
      const align = e => getComputedStyle(e).textAlign;
      const heads = [...table.tHead.rows[0].cells];
      return [...table.tBodies[0].rows].flatMap(row => [...row.cells])
        .filter(c => c.colSpan === 1 && align(c) !== align(heads[c.cellIndex]))
        .map(c => `${heads[c.cellIndex].textContent || '#' + c.cellIndex}: ${c.textContent}`);
    }),
  };
})()"""


def test_html_page_renders_in_chromium_and_agrees(sample: Database, as_json: dict[str, Any],
                                                  tmp_path: Path) -> None:
    binary = chromium_binary()
    page = tmp_path / "report.html"
    cli(sample, "--no-refresh", "--html", str(page), "--format", "json")
    html = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch (xmlns URIs are names; url(#id) is in the page).
    assert not re.search(r'(?:src|href)\s*=\s*"(?:https?:|//)|url\((?!#)|@import|<script[^>]*\ssrc',
                         html)

    browser = Chromium(binary, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"}, session=False)
        browser.session = browser.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
            session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable")
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        browser.send("Page.navigate", {"url": page.as_uri()})
        browser.wait_for("Page.loadEventFired")
        probe = browser.send("Runtime.evaluate", {"expression": PAGE_PROBE,
                                                  "returnByValue": True})["result"]["value"]
        shot = browser.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True}, timeout=60)
    finally:
        browser.close()

    problems = [e for e in browser.events
                if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled"
                    and e["params"]["type"] in ("error", "assert"))
                or (e.get("method") == "Log.entryAdded"
                    and e["params"]["entry"]["level"] == "error")]
    assert problems == [], problems
    assert probe["external"] == 0
    # At 1280 px the headline cards fit one row, and every column reads as its header does.
    assert probe["kpiRows"] == 1
    assert probe["misaligned"] == []
    charts = probe["charts"]
    assert len(charts) == CHARTS, charts
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 80, chart
        assert chart["shapes"] > 20, chart
    labels = " | ".join(c["label"] for c in charts)
    whole = next(r for r in as_json["library_coverage"] if r["cohort"] == "all")
    assert f"{whole['resolved']:,} resolved" in labels
    assert "gate" in labels

    # Every figure on the page is the JSON's, shown as the terminal shows it.
    values = flat(as_json)
    assert len(probe["metrics"]) > 100
    for name, raw, text in probe["metrics"]:
        assert raw == csv_value(values[name]), name
        column = name.rsplit(".", 1)[-1]
        if column.endswith("_at") and values[name] is not None:
            # Same instant; the zone's name depends on the server's TimeZone setting.
            when = datetime.fromisoformat(values[name])
            assert text.startswith(f"{when:%Y-%m-%d %H:%M:%S}"), name
        else:
            assert text == fmt(values[name], column), name
    derived = {name: raw for name, raw, _ in probe["derived"]}
    assert derived["identity_age.stale_identities.sum"] == str(
        sum(r["stale_identities"] for r in as_json["identity_age"]))
    for method in {r["method"] for r in as_json["identity_by_method"]}:
        assert derived[f"identity_by_method.{method}.identities"] == str(sum(
            r["identities"] for r in as_json["identity_by_method"] if r["method"] == method))

    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(png)
    print(f"screenshot: {screenshot}")


HOSTILE = '"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
INJECTION_PROBE = """(() => ({
  scripts: document.querySelectorAll('script').length,
  images: document.querySelectorAll('img').length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
  labels: [...document.querySelectorAll('svg.chart')].map(s => s.getAttribute('aria-label')),
}))()"""


def test_stored_hostile_names_stay_text_on_the_page(
        sample: Database, clone_database: Callable[[Database], Database], tmp_path: Path) -> None:
    db = clone_database(sample)
    with db.connect() as conn:  # the most common method and source take hostile names
        conn.execute("update wxyc_schema.library_identity set method = %s", (HOSTILE,))
        conn.execute("update wxyc_schema.library_identity_source set source = %s "
                     "where source = (select source from wxyc_schema.library_identity_source "
                     "group by source order by count(*) desc limit 1)", (HOSTILE + "s",))
    page = tmp_path / "report.html"
    cli(db, "--no-refresh", "--html", str(page), "--format", "json")
    html = page.read_text(encoding="utf-8")
    assert html.count("<script") == 2 and "<img" not in html  # the page's own two
    browser = Chromium(chromium_binary(), tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"}, session=False)
        browser.session = browser.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
            session=False)["sessionId"]
        browser.send("Page.enable")
        browser.send("Page.navigate", {"url": page.as_uri()})
        browser.wait_for("Page.loadEventFired")
        probe = browser.send("Runtime.evaluate", {"expression": INJECTION_PROBE,
                                                  "returnByValue": True})["result"]["value"]
    finally:
        browser.close()
    assert probe["scripts"] == 2 and probe["images"] == 0 and probe["pwned"] is None, probe
    # The names are still shown, as text.
    assert any(HOSTILE in label for label in probe["labels"]), probe["labels"]


FORMULA = '=HYPERLINK("http://x","y")'


def test_stored_names_never_reach_a_spreadsheet_as_formulas(
        sample: Database, clone_database: Callable[[Database], Database]) -> None:
    db = clone_database(sample)
    with db.connect() as conn:  # the most common method and source take formula names
        conn.execute("update wxyc_schema.library_identity set method = %s", (FORMULA,))
        conn.execute("update wxyc_schema.library_identity_source set source = %s "
                     "where source = (select source from wxyc_schema.library_identity_source "
                     "group by source order by count(*) desc limit 1)", ("@SUM(1+1)",))
    as_json = json.loads(cli(db, "--format", "json"))
    values = flat(as_json)
    lines = list(csv.reader(io.StringIO(cli(db, "--no-refresh", "--format", "csv"))))
    assert lines[0] == ["section", "key", "metric", "value"]
    starts = ("=", "+", "-", "@", "\t", "\r")
    keys = set()
    for section, key, metric, value in lines[1:]:
        keys.add(key)
        assert not key.startswith(starts), key
        raw = values[".".join(p for p in (section, key.removeprefix("'"), metric) if p)]
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            assert value == csv_value(raw)  # a number, negative or not, stays a number
        else:
            assert not value.startswith(starts), value
            assert value.removeprefix("'") == csv_value(raw)
    assert any(k.startswith(f"'{FORMULA}/") for k in keys), keys
    assert any(k.startswith("'@SUM(1+1)/") for k in keys), keys
    # The rule itself: a formula gets its quote; a negative number or its text does not.
    assert data.csv_cell(FORMULA) == "'" + FORMULA
    assert [data.csv_cell(v) for v in (-3, -0.25, "-3", "-1+2", "\tx", "\rx", "+1e3")] == [
        "-3", "-0.25", "-3", "'-1+2", "'\tx", "'\rx", "+1e3"]


@pytest.mark.slow
def test_concurrent_reports_wait_for_each_other_and_all_succeed(
        make_database: Callable[[], Database]) -> None:
    # Both build the views at once on a database where they were never built, then both
    # rebuild them at once where they exist (a rebuild drops what reads a replaced view).
    for fresh in range(2):
        db = make_database()
        migrate.apply(db)
        with db.connect() as conn:
            seed_library(conn, 200)
        env = {**os.environ, "DATABASE_URL": db.conninfo}
        for _ in range(1 + fresh):
            procs = [subprocess.Popen([*CLI, "report", "--format", "csv"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2)]
            outs = [p.communicate(timeout=600) for p in procs]
            for proc, (out, err) in zip(procs, outs, strict=True):
                assert proc.returncode == 0, err[-2000:]
                assert out.startswith("section,key,metric,value\n") and "Traceback" not in err


# -- what needs a person: alerts, the worklist, a phone, contrast --------------------------
LEAD_PROBE = """(() => {
  const all = s => [...document.querySelectorAll(s)];
  const firstPanel = document.querySelector('section.panel');
  return {
    order: all('main > header, main > section').map(e => e.className || e.tagName),
    alerts: all('[data-alert]').map(e => [e.dataset.alert, e.textContent]),
    firstPanelIsWorklist: firstPanel && firstPanel.id === 'worklist',
    tables: all('table').length,
    captions: all('table > caption').filter(c => c.textContent.trim()).length,
    regions: all('.scroll, .chart-wrap').map(e => [e.tabIndex, e.getAttribute('role'),
                                                   e.getAttribute('aria-label')]),
    chartText: all('svg.chart text').map(t => t.textContent).join(' | '),
    ticks: all('svg.chart[aria-label^="Coverage"] text').map(t => t.textContent)
      .filter(t => /^#\\d+/.test(t)),
    rows: document.querySelectorAll('#wl-table tbody tr').length,
  };
})()"""

# Every value on the page: inside the viewport's width, not cut off, the page no wider.
HIDDEN_PROBE = """(() => {
  const width = document.documentElement.clientWidth;
  const cells = [...document.querySelectorAll(
    '[data-metric], [data-derived], #wl-table td, .kpi strong, [data-alert]')];
  const hidden = cells.filter(e => {
    const box = e.getBoundingClientRect();
    return box.width === 0 || box.left < -1 || box.right > width + 1
      || e.scrollWidth > e.clientWidth + 1;
  }).map(e => e.dataset.metric || e.dataset.derived || e.dataset.label || e.textContent);
  return {width, pageWidth: document.documentElement.scrollWidth, checked: cells.length,
          hidden: hidden.slice(0, 20), count: hidden.length};
})()"""

# WCAG 2 contrast of every element's own text against the background behind it.
CONTRAST_PROBE = """(() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  let checked = 0;
  for (const e of document.querySelectorAll('body *:not(script):not(style)')) {
    if (e.closest('svg')) continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(e);
    const before = getComputedStyle(e, '::before').content;
    if (!own && !(before && before !== 'none' && before !== 'normal')) continue;
    if (style.visibility === 'hidden' || e.getClientRects().length === 0) continue;
    checked++;
    const [a, b] = [lum(rgb(style.color)), lum(background(e))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) failures.push(`${e.tagName}.${e.className}: ${ratio.toFixed(2)} ` +
                                    `"${e.textContent.trim().slice(0, 40)}"`);
  }
  return {checked, failures};
})()"""

FILTER_SCRIPT = """(async () => {
  const kind = document.getElementById('wl-kind'), text = document.getElementById('wl-text');
  const rows = () => [...document.querySelectorAll('#wl-table tbody tr')]
    .map(tr => [...tr.cells].map(c => c.textContent));
  kind.value = 'refused'; kind.dispatchEvent(new Event('change'));
  const refused = rows();
  kind.value = ''; text.value = %s; text.dispatchEvent(new Event('input'));
  const found = rows();
  text.value = ''; text.dispatchEvent(new Event('input'));
  document.querySelector('#wl-table th:first-child button').click();
  document.querySelector('#wl-table th:first-child button').click();
  const sorted = rows().map(r => r[0]);
  const csv = {};
  for (const a of document.querySelectorAll('a.csv')) {
    csv[a.dataset.kind] = await (await fetch(a.href)).text();
  }
  return {refused, found, sorted, csv, count: document.getElementById('wl-count').textContent};
})()"""


def _open(browser: Chromium, page: Path, width: int) -> None:
    target = browser.send("Target.createTarget", {"url": "about:blank"}, session=False)
    browser.session = browser.send(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
        session=False)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable")
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": 900, "deviceScaleFactor": 1,
                  "mobile": width < 600})
    browser.events.clear()
    browser.send("Page.navigate", {"url": page.as_uri()})
    browser.wait_for("Page.loadEventFired")


def _evaluate(browser: Chromium, expression: str) -> Any:
    reply = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                              "awaitPromise": True})
    assert "exceptionDetails" not in reply, reply
    return reply["result"]["value"]


def review_export(db: Database, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": db.conninfo}
    out = subprocess.run([*CLI, "review", "export", "--no-refresh", "--out", "-", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_page_leads_with_alerts_and_the_worklist_at_1280_and_390(
        sample: Database, clone_database: Callable[[Database], Database],
        tmp_path: Path) -> None:
    db = clone_database(sample)
    with db.connect() as conn:  # a handle LML forgot, as a refresh found it, and a failed run
        handle = next(i for i in range(1, 100_000) if standin_refresh.forgotten(i))
        conn.execute("insert into wxyc_schema.rotation (rotation_bin, discogs_release_id, "
                     "lml_identity_id) values ('H', 123456, %s)", (handle,))
        run = conn.execute("insert into identity_loader.runs (run_id, job, status, "
                           "finished_at, error) values (gen_random_uuid(), "
                           "'rotation_refresh', 'failed', now(), 'LML answered 503 six "
                           "times in a row') returning run_id").fetchone()[0]
        conn.execute("insert into identity_loader.rotation_refresh_results (run_id, "
                     "identity_id, status) values (%s, %s, 'not_found')", (run, handle))
    page = tmp_path / "report.html"
    cli(db, "--html", str(page), "--format", "json")
    expected = {kind: review_export(db, "--kind", kind)
                for kind in ("unresolved", "refused", "low-confidence")}
    expected[""] = review_export(db)
    browser = Chromium(chromium_binary(), tmp_path / "profile")
    try:
        _open(browser, page, 1280)
        lead = _evaluate(browser, LEAD_PROBE)
        refused = list(csv.DictReader(io.StringIO(expected["refused"])))
        some_artist = next(csv.DictReader(io.StringIO(expected["unresolved"])))["artist"]
        filtered = _evaluate(browser, FILTER_SCRIPT % json.dumps(some_artist))
        wide = (_evaluate(browser, HIDDEN_PROBE), _evaluate(browser, CONTRAST_PROBE))
        _open(browser, page, 390)
        narrow = (_evaluate(browser, HIDDEN_PROBE), _evaluate(browser, CONTRAST_PROBE))
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, timeout=60)
    finally:
        browser.close()
    problems = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    assert problems == [], problems

    # The alerts come first, the worklist next, named plainly with their remedy.
    assert lead["order"][:3] == ["HEADER", "alerts", "panel worklist"], lead["order"]
    alerts = dict(lead["alerts"])
    assert "library-identity rotation backfill --stale-handles" in alerts[
        "stale_rotation_handles"]
    assert "1 of" in alerts["stale_rotation_handles"]
    assert "rotation refresh run failed" in alerts["last_run_failed"]
    assert "503 six times" in alerts["last_run_failed"]
    # Captions, focusable labelled scroll regions, chart text as text, one tick per run.
    assert lead["captions"] == lead["tables"] > 10
    assert all(tab == 0 and role == "region" and label for tab, role, label in lead["regions"])
    assert "Coverage after each resolve run" in lead["chartText"]
    assert len(lead["ticks"]) == len(set(lead["ticks"])) > 0

    # The filters: a kind shows only its rows; text finds an artist; sorting sorts.
    assert len(filtered["refused"]) == len(refused) > 0
    assert {r[0] for r in filtered["refused"]} == {"refused"}
    assert filtered["found"] and all(some_artist in r[1] for r in filtered["found"])
    assert filtered["sorted"] == sorted(filtered["sorted"], reverse=True)
    # Each CSV link holds exactly what `review export` writes.
    assert filtered["csv"] == expected

    for probe, contrast in (wide, narrow):
        assert probe["checked"] > 100 and probe["count"] == 0, probe
        assert probe["pageWidth"] <= probe["width"], probe
        assert contrast["checked"] > 100 and contrast["failures"] == [], contrast
    assert narrow[0]["width"] == 390
    assert base64.b64decode(shot["data"]).startswith(b"\x89PNG")
