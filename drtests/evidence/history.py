"""Trends across runs: quarterly game days and nightly jobs, read from their run.json."""

from __future__ import annotations

import html
import math
from pathlib import Path

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


def rto_series(run: RunRecord) -> dict[str, float]:
    """Worst achieved RTO per procedure in one run."""
    worst: dict[str, float] = {}
    for s in run.scenarios:
        if s.kind == "scenario" and s.rto is not None and s.rto.achieved_s is not None:
            worst[s.procedure] = max(worst.get(s.procedure, 0.0), s.rto.achieved_s)
    return worst


def trend_svg(runs: list[RunRecord]) -> str:
    """Worst RTO per procedure across runs (log scale), the objective dashed, each run's
    verdict as the point's colour."""
    if len(runs) < 2:
        return "<p>Trend needs at least two runs.</p>"
    procedures = sorted({p for r in runs for p in rto_series(r)})
    objectives = {
        s.procedure: s.rto.objective_s
        for r in runs
        for s in r.scenarios
        if s.rto is not None and s.kind == "scenario"
    }
    values = [v for r in runs for v in rto_series(r).values()] + list(objectives.values())
    if not values:
        return "<p>No RTO measured in these runs.</p>"
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
        'aria-label="RTO trend across runs">'
    ]
    for tick in (1, 10, 60, 300, 1800, 7200):
        if lo <= tick <= hi:
            parts.append(
                f'<line x1="{left}" x2="{width - 20}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                f'stroke="#eaeef2"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" '
                f'text-anchor="end" fill="#57606a">{_label(tick)}</text>'
            )
    palette = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700"]
    for n, procedure in enumerate(procedures):
        colour = palette[n % len(palette)]
        if procedure in objectives:
            oy = y(objectives[procedure])
            parts.append(
                f'<line x1="{left}" x2="{width - 20}" y1="{oy:.1f}" y2="{oy:.1f}" '
                f'stroke="{colour}" stroke-dasharray="5 4"/>'
            )
        points = [
            (x(i), y(rto_series(r)[procedure]), r)
            for i, r in enumerate(runs)
            if procedure in rto_series(r)
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
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
