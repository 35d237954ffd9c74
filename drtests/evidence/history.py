"""Trends across runs: quarterly game days and nightly jobs, read from their run.json."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from drtests.errors import DRError
from drtests.evidence.model import RunRecord


def find_runs(paths: list[Path]) -> list[RunRecord]:
    """Each path is a run folder or a folder of run folders; oldest run first."""
    runs: dict[str, RunRecord] = {}
    for path in paths:
        candidates = (
            [path / "run.json"] if (path / "run.json").exists() else sorted(path.glob("*/run.json"))
        )
        if not candidates and not path.exists():
            raise DRError(f"{path}: no such folder")
        for candidate in candidates:
            try:
                run = RunRecord.model_validate_json(candidate.read_text(encoding="utf-8"))
            except (ValidationError, ValueError) as exc:
                raise DRError(
                    f"{candidate}: not a drtests run document ({str(exc).splitlines()[0]})"
                ) from None
            runs[run.run_id] = run
    return sorted(runs.values(), key=lambda r: r.started_at)


Measure = Literal["rto", "rpo"]
#: what each measure's chart says it draws
MEASURES = {"rto": "RTO", "rpo": "data age (RPO achieved)"}


def worst_series(run: RunRecord, measure: Measure = "rto") -> dict[str, float]:
    """Worst achieved RTO (or RPO: the data age a restore test measures) per procedure in
    one run."""
    worst: dict[str, float] = {}
    for s in run.scenarios:
        result = s.rto if measure == "rto" else s.rpo
        if s.kind == "scenario" and result is not None and result.achieved_s is not None:
            worst[s.procedure] = max(worst.get(s.procedure, 0.0), result.achieved_s)
    return worst


def rto_series(run: RunRecord) -> dict[str, float]:
    return worst_series(run, "rto")


def trend_svg(runs: list[RunRecord], measure: Measure = "rto") -> str:
    """Worst RTO (or data age) per procedure across runs (log scale), the objective
    dashed, each run's verdict as the point's colour: restore durations and backup ages
    of nightly restore tests drift here before they miss."""
    what = MEASURES[measure]
    if len(runs) < 2:
        return f"<p>The {what} trend needs at least two runs.</p>"

    def series(run: RunRecord) -> dict[str, float]:
        return worst_series(run, measure)

    procedures = sorted({p for r in runs for p in series(r)})
    objectives = {
        s.procedure: (s.rto if measure == "rto" else s.rpo).objective_s  # type: ignore[union-attr]
        for r in runs
        for s in r.scenarios
        if (s.rto if measure == "rto" else s.rpo) is not None and s.kind == "scenario"
    }
    values = [v for r in runs for v in series(r).values()] + [o for o in objectives.values() if o]
    values = [v for v in values if v > 0]
    if not values:
        return f"<p>No {what} measured in these runs.</p>"
    lo = max(min(values) / 2, 0.1)
    hi = max(values) * 1.5
    width, height, left, top, bottom = 760, 260, 60, 16, 60
    plot_w, plot_h = width - left - 20, height - top - bottom

    def y(seconds: float) -> float:
        return top + plot_h * (1 - math.log10(seconds / lo) / math.log10(hi / lo))

    def x(index: int) -> float:
        return left + plot_w * index / (len(runs) - 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="system-ui,sans-serif" font-size="11" role="img" '
        f'aria-label="{what} trend across runs">'
    ]
    for tick in (1, 10, 60, 300, 1800, 3600 * 4, 86400, 7 * 86400):
        if lo <= tick <= hi:
            parts.append(
                f'<line x1="{left}" x2="{width - 20}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                f'stroke="#eaeef2"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" '
                f'text-anchor="end" fill="#57606a">{_label(tick)}</text>'
            )
    palette = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700"]
    for n, procedure in enumerate(procedures):
        colour = palette[n % len(palette)]
        if objectives.get(procedure):
            oy = y(objectives[procedure])
            parts.append(
                f'<line x1="{left}" x2="{width - 20}" y1="{oy:.1f}" y2="{oy:.1f}" '
                f'stroke="{colour}" stroke-dasharray="5 4"/>'
            )
        points = [
            (x(i), y(max(series(r)[procedure], lo)), r)
            for i, r in enumerate(runs)
            if procedure in series(r)
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for px, py, run in points:
            fill = "#2da44e" if run.passed else "#cf222e"
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="{fill}" '
                f'stroke="{colour}"><title>{html.escape(run.run_id)}</title></circle>'
            )
        parts.append(
            f'<text x="{left + 4 + 180 * n}" y="{height - 8}" fill="{colour}">'
            f"— {html.escape(procedure)} (dashed: objective)</text>"
        )
    for i, run in enumerate(runs):
        parts.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'fill="#57606a">{run.started_at:%Y-%m-%d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _label(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.0f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
