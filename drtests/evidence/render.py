"""Reports rendered from the run document: self-contained HTML with an inline SVG chart,
a Markdown summary, and the terminal summary table."""

from __future__ import annotations

import html
import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from drtests.evidence.model import ObjectiveResult, RunRecord, ScenarioRecord
from drtests.redaction import Redactor


def fmt_objective(result: ObjectiveResult | None) -> str:
    if result is None:
        return "—"
    achieved = "—" if result.achieved_s is None else _seconds(result.achieved_s)
    return f"{_seconds(result.objective_s)} / {achieved}"


def _seconds(value: float) -> str:
    if value == float("inf"):
        return "∞"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def summary_rows(run: RunRecord) -> list[list[str]]:
    rows = []
    for s in run.scenarios:
        name = s.scenario_id + (" (negative control)" if s.kind != "scenario" else "")
        fault = "; ".join(f.kind for f in s.faults) or "—"
        detected = ", ".join(s.detected_by[:3]) + (
            f" +{len(s.detected_by) - 3}" if len(s.detected_by) > 3 else ""
        )
        rows.append(
            [
                name,
                fault,
                detected or "—",
                "yes" if s.restored else "no",
                "yes" if s.verified else "no",
                fmt_objective(s.rto),
                fmt_objective(s.rpo),
                s.verdict,
            ]
        )
    return rows


HEADERS = [
    "Scenario",
    "Fault",
    "Detected by",
    "Restored",
    "Verified",
    "RTO objective / achieved",
    "RPO objective / achieved",
    "Verdict",
]


def print_summary(run: RunRecord, console: Console) -> None:
    table = Table(
        title=f"DR game day {escape(run.run_id)} — {'PASSED' if run.passed else 'FAILED'}",
        show_lines=False,
        expand=False,
    )
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in summary_rows(run):
        style = "green" if row[-1] in {"passed", "control-held"} else "red"
        table.add_row(*(escape(c) for c in row[:-1]), f"[{style}]{row[-1]}[/{style}]")
    console.print(table)


def rto_chart_svg(scenarios: list[ScenarioRecord]) -> str:
    """Achieved RTO per scenario against its objective, on a log time axis so that seconds
    and a 30-minute objective are both readable; the objective is a marker on each row."""
    rows = [s for s in scenarios if s.rto is not None and s.rto.achieved_s is not None]
    if not rows:
        return "<p>No RTO measured.</p>"
    label_w, bar_w, row_h, top = 330, 520, 26, 10
    longest = max(max(s.rto.objective_s, s.rto.achieved_s or 0) for s in rows if s.rto)
    lo, hi = 0.1, max(longest * 1.5, 1.0)

    def x(seconds: float) -> float:
        clamped = min(max(seconds, lo), hi)
        return label_w + bar_w * math.log10(clamped / lo) / math.log10(hi / lo)

    height = top + row_h * len(rows) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 40}" '
        f'height="{height}" role="img" aria-label="RTO against objective" '
        'font-family="system-ui,sans-serif" font-size="12">'
    ]
    axis_y = top + row_h * len(rows) + 4
    for tick in (1, 10, 60, 300, 1800, 7200):
        if lo < tick <= hi:
            tx = x(tick)
            parts.append(
                f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{axis_y}" stroke="#eaeef2"/>'
                f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#57606a">'
                f"{_seconds(tick)}</text>"
            )
    for i, s in enumerate(rows):
        assert s.rto is not None and s.rto.achieved_s is not None
        y = top + i * row_h
        colour = "#2da44e" if s.rto.met else "#cf222e"
        end = x(s.rto.achieved_s)
        goal = x(s.rto.objective_s)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{html.escape(s.scenario_id[:48])}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{max(end - label_w, 2):.1f}" height="14" '
            f'fill="{colour}"><title>{_seconds(s.rto.achieved_s)}</title></rect>'
            f'<line x1="{goal:.1f}" y1="{y + 1}" x2="{goal:.1f}" y2="{y + 21}" stroke="#1f2328" '
            'stroke-width="2"/>'
            f'<text x="{end + 5:.1f}" y="{y + 15}" fill="#1f2328">'
            f"{_seconds(s.rto.achieved_s)}</text>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 2}" fill="#57606a">bar: achieved RTO; '
        "black mark: objective (log scale)</text></svg>"
    )
    return "".join(parts)


def write_html(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    env = Environment(
        loader=PackageLoader("drtests.evidence", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    page = env.get_template("report.html.j2").render(
        run=run, rto_chart=rto_chart_svg(run.scenarios), rows=summary_rows(run)
    )
    path = run_dir / "report.html"
    path.write_text(redact(page), encoding="utf-8")
    return path


def write_markdown(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    lines = [
        f"# DR game day {run.run_id}: {'PASSED' if run.passed else 'FAILED'}",
        "",
        f"Environment `{run.environment}`, profile `{run.profile_name}`, operator {run.operator}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in summary_rows(run)
    ]
    path = run_dir / "summary.md"
    path.write_text(redact("\n".join(lines) + "\n"), encoding="utf-8")
    return path
