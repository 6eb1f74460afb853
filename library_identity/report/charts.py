"""The report's charts, drawn with matplotlib as inline SVG.

Text stays text (svg.fonttype none), so a reader can find and copy it and it scales with
the page; ids are salted with a fixed string so the same numbers give the same SVG.
Figures are built without pyplot (no global state, safe in any thread). Labels drawn on a
bar take white or ink, whichever reads better on that colour (WCAG contrast).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from library_identity.report.data import Report

STATUS_COLOURS = {"resolved": "#2a9d8f", "compilation": "#457b9d",
                  "merge_skipped": "#e9c46a", "unresolved": "#e76f51",
                  "never_attempted": "#adb5bd"}
STATUS_LABELS = {"resolved": "resolved", "compilation": "compilation",
                 "merge_skipped": "merge skipped", "unresolved": "unresolved",
                 "never_attempted": "never attempted"}
# Best band darkest; the lower bands warm up towards the 0.70 gate and below it.
BAND_COLOURS = ["#264653", "#2a9d8f", "#8ab17d", "#e9c46a", "#f4a261", "#e76f51", "#adb5bd"]
FRESH, STALE = "#2a9d8f", "#e9c46a"
GATE_COLOUR = "#c1121f"
INK, MUTED = "#212529", "#555d65"
WIDTH_IN = 7.2

_RC = {
    "svg.fonttype": "none",
    # Labels carry stored names: a `$` in one is text, never mathtext.
    "text.parse_math": False,
    "svg.hashsalt": "library-identity-report",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": "#ced4da",
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 9,
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_RC):
        yield


def _svg(fig: Figure, label: str) -> str:
    """The figure as an <svg> element for inlining: no XML prologue, scalable, labelled."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
                  r'<svg \1', text, count=1)
    # The label carries stored values (method and source names): escaped like all text.
    return text.replace("<svg ", f'<svg class="chart" role="img" '
                                 f'aria-label="{escape(label, quote=True)}" ', 1)


def _figure(height_in: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, fontsize=10,
            transform=ax.transAxes)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def label_colour(background: str) -> str:
    """White or ink, whichever contrasts more with the bar behind the label."""
    return max(("#ffffff", INK), key=lambda ink: contrast(ink, background))


def _thousands(value: float, _pos: Any = None) -> str:
    return f"{value:,.0f}"


def coverage_over_runs(report: Report) -> str:
    """Covered, resolved and attempted share of the library after each resolve run."""
    runs = report.sections["run_history"]
    with _style():
        fig, ax = _figure(3.0)
        ax.set_title("Coverage after each resolve run", loc="left")
        if not runs:
            _empty(ax, "No resolve run yet")
            return _svg(fig, "Coverage after each resolve run: no run yet")
        x = [int(r["run_number"]) for r in runs]

        def pct(row: dict[str, Any], numerator: float) -> float:
            return 100.0 * numerator / row["library_rows"] if row["library_rows"] else 0.0

        series = [
            ("covered (resolved + compilation)", [float(r["covered_pct_after"] or 0)
                                                  for r in runs], STATUS_COLOURS["resolved"]),
            ("resolved", [pct(r, r["resolved_after"]) for r in runs],
             STATUS_COLOURS["compilation"]),
            ("attempted", [float(r["attempted_pct_after"] or 0) for r in runs], MUTED),
        ]
        for label, values, colour in series:
            ax.plot(x, values, marker="o", markersize=4, linewidth=2 if label != "attempted"
                    else 1.2, linestyle="-" if label != "attempted" else "--", color=colour,
                    label=label)
        last = series[0][1][-1]
        ax.annotate(f"{last:.2f}%", (x[-1], last), textcoords="offset points", xytext=(0, 8),
                    ha="center", color=INK, fontsize=8, fontweight="bold")
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
        # One tick per run (at most 12, evenly thinned), never a repeated label.
        step = max(1, -(-len(x) // 12))
        ticks = x[::step]
        modes = {int(r["run_number"]): r["mode"] for r in runs}
        ax.set_xticks(ticks, [f"#{t}\n{modes.get(t) or ''}" for t in ticks])
        ax.set_xlabel("resolve run")
        ax.grid(axis="y", color="#e9ecef")
        ax.legend(loc="lower right", ncols=3)
        return _svg(fig, f"Coverage after each resolve run: {last:.2f}% after run #{x[-1]}")


def status_split(report: Report) -> str:
    """Resolved / compilation / unresolved / never attempted, per cohort, as shares."""
    rows = [report.coverage(c) for c in ("all", "non_va", "va")]
    labels = {"all": "whole library", "non_va": "non-V/A", "va": "V/A"}
    with _style():
        fig, ax = _figure(2.4)
        ax.set_title("Library rows by identity status", loc="left")
        y = list(range(len(rows)))[::-1]
        left = [0.0] * len(rows)
        for state in STATUS_COLOURS:
            widths = [100.0 * r[state] / r["library_rows"] if r["library_rows"] else 0.0
                      for r in rows]
            ax.barh(y, widths, left=left, color=STATUS_COLOURS[state], height=0.6,
                    label=STATUS_LABELS[state])
            for yi, li, wi, r in zip(y, left, widths, rows, strict=True):
                if wi >= 7:
                    ax.text(li + wi / 2, yi, f"{r[state]:,}", ha="center", va="center",
                            color=label_colour(STATUS_COLOURS[state]), fontsize=9)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_yticks(y, [f"{labels[r['cohort']]}\n{r['library_rows']:,} rows" for r in rows])
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=5)
        whole = report.coverage()
        return _svg(fig, f"Identity status: {whole['resolved']:,} resolved, "
                         f"{whole['compilation']:,} compilations, {whole['merge_skipped']:,} "
                         f"merge skipped, {whole['unresolved']:,} unresolved, "
                         f"{whole['never_attempted']:,} never attempted")


def _banded_bars(report: Report, section: str, dimension: str, measure: str, title: str,
                 axis_label: str) -> str:
    totals = report.totals_by(section, dimension, measure)
    bands = report.band_labels()
    with _style():
        fig, ax = _figure(0.9 + 0.32 * max(len(totals), 3))
        ax.set_title(title, loc="left")
        if not totals:
            _empty(ax, "No resolved row yet")
            return _svg(fig, f"{title}: no resolved row yet")
        y = list(range(len(totals)))[::-1]
        left = [0] * len(totals)
        for i, band in enumerate(bands):
            widths = [by_band.get(band, 0) for _, _, by_band in totals]
            if not any(widths):
                continue
            colour = BAND_COLOURS[-1] if band == "none" else BAND_COLOURS[min(i, 5)]
            ax.barh(y, widths, left=left, color=colour, height=0.65, label=band)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for yi, (_, total, _) in zip(y, totals, strict=True):
            ax.text(total, yi, f" {total:,}", va="center", ha="left", color=INK, fontsize=8)
        ax.set_yticks(y, [name for name, _, _ in totals])
        ax.set_xlim(0, max(t for _, t, _ in totals) * 1.15 or 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_xlabel(axis_label)
        ax.legend(title="confidence", loc="lower right", title_fontsize=8)
        top = max(totals, key=lambda t: t[1])
        return _svg(fig, f"{title}: most rows via {top[0]} ({top[1]:,})")


def by_method(report: Report) -> str:
    return _banded_bars(report, "identity_by_method", "method", "identities",
                        "Resolved rows by match method", "resolved library rows")


def by_source(report: Report) -> str:
    return _banded_bars(report, "identity_by_source", "source", "library_rows",
                        "Resolved rows by identity source", "resolved library rows with the source")


def identity_age(report: Report) -> str:
    """Histogram of covered rows by identity age, stale part stacked on top."""
    rows = [r for r in report.sections["identity_age"]
            if r["age_bucket"] != "unknown" or r["identities"]]
    with _style():
        fig, ax = _figure(2.8)
        stale_days = rows[0]["stale_days"] if rows else 7
        ax.set_title(f"Identity age (stale after {stale_days} days)", loc="left")
        x = list(range(len(rows)))
        fresh = [int(r["identities"]) - int(r["stale_identities"]) for r in rows]
        stale = [int(r["stale_identities"]) for r in rows]
        ax.bar(x, fresh, color=FRESH, width=0.7, label="fresh")
        ax.bar(x, stale, bottom=fresh, color=STALE, width=0.7, label="stale")
        top = max([int(r["identities"]) for r in rows] + [1])
        for xi, r in zip(x, rows, strict=True):
            ax.text(xi, int(r["identities"]) + top * 0.02, f"{int(r['identities']):,}",
                    ha="center", va="bottom", fontsize=8, color=INK)
        ax.set_xticks(x, [r["age_bucket"] for r in rows])
        ax.set_ylim(0, top * 1.18)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_ylabel("covered rows")
        ax.legend(loc="upper right")
        return _svg(fig, f"Identity age: {report.stale_identities():,} stale identities")


def rotation_gate(report: Report) -> str:
    """Rotation resolvable coverage as a bar against the gate line."""
    row = report.rotation()
    with _style():
        fig, ax = _figure(1.6)
        ax.set_title("Rotation resolvable coverage", loc="left")
        if row is None or row["resolvable_coverage_pct"] is None:
            _empty(ax, "No active rotation row has a Discogs release id")
            return _svg(fig, "Rotation resolvable coverage: nothing resolvable")
        pct = float(row["resolvable_coverage_pct"])
        gate = float(row["gate_min_pct"])
        passes = bool(row["gate_passes"])
        ax.barh([0], [100], color="#e9ecef", height=0.5)
        ax.barh([0], [pct], color=FRESH if passes else STATUS_COLOURS["unresolved"],
                height=0.5)
        ax.axvline(gate, color=GATE_COLOUR, linestyle="--", linewidth=1.5)
        ax.text(gate, 0.42, f"gate {gate:g}%", color=GATE_COLOUR, ha="right", va="bottom",
                fontsize=8)
        bar = FRESH if passes else STATUS_COLOURS["unresolved"]
        ax.text(1, 0, f"{pct:.2f}%  ({row['active_with_lml']:,} of "
                      f"{row['active_with_discogs']:,} active rows with a release id)  "
                      f"{'PASS' if passes else 'FAIL'}",
                va="center", ha="left", color=label_colour(bar) if pct > 60 else INK,
                fontsize=10, fontweight="bold")
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.5, 0.75)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        return _svg(fig, f"Rotation resolvable coverage {pct:.2f}% against the {gate:g}% "
                         f"gate: {'pass' if passes else 'fail'}")


CHARTS = {
    "coverage_over_runs": coverage_over_runs,
    "status_split": status_split,
    "by_method": by_method,
    "by_source": by_source,
    "identity_age": identity_age,
    "rotation_gate": rotation_gate,
}


def render_all(report: Report, names: Sequence[str] = tuple(CHARTS)) -> dict[str, str]:
    return {name: CHARTS[name](report) for name in names}
