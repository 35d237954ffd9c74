"""Reports rendered from the run document: self-contained HTML with an inline SVG chart,
a Markdown summary, and the terminal summary table."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from drtests.evidence.model import ObjectiveResult, RunRecord, ScenarioRecord
from drtests.patience import SLOW_S
from drtests.redaction import Redactor


def fmt_objective(result: ObjectiveResult | None) -> str:
    if result is None:
        return "—"
    achieved = "—" if result.achieved_s is None else _seconds(result.achieved_s)
    return f"{_seconds(result.objective_s)} / {achieved}"


def _seconds(value: float) -> str:
    if value == float("inf"):
        return "∞"
    if value >= 2 * 3600:
        return f"{value / 3600:.1f} h"
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
        title=f"DR {run.kind} {escape(run.run_id)} — {run.outcome}",
        show_lines=False,
        expand=False,
    )
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in summary_rows(run):
        style = "green" if row[-1] in {"passed", "control-held"} else "red"
        table.add_row(*(escape(c) for c in row[:-1]), f"[{style}]{row[-1]}[/{style}]")
    console.print(table)
    console.print(patience_line(run))


def patience_line(run: RunRecord) -> str:
    """How slow the platform was: visible, never a failure by itself."""
    steps = [st for s in run.scenarios for st in s.steps]
    slow = sum(st.slow_requests for st in steps)
    retried = sum(st.retried_requests for st in steps)
    under = f"; load mode: {run.load}" if run.load else ""
    return (
        f"Platform patience: {slow} requests slower than {SLOW_S:g} s, {retried} sent again "
        "after a timeout, refusal or 5xx (slow is not a failure: only a step's deadline is)" + under
    )


def _objective(s: ScenarioRecord, which: str) -> ObjectiveResult | None:
    return s.rto if which == "rto" else s.rpo


#: candidate axis ticks, in seconds: 1 s … 7 days
TICKS = (1, 10, 60, 300, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 7 * 86400)
#: characters of a scenario's name shown beside its bar (the whole name on hover)
LABEL_CHARS = 46


def _ticks(
    lo: float, hi: float, x: Callable[[float], float], longest_objective: float
) -> list[int]:
    """Ticks that do not run together (60 px apart), the one at or above the largest
    objective always among them: a 4-hour objective is read against a labelled tick."""
    last = next((t for t in TICKS if t >= longest_objective), TICKS[-1])
    chosen: list[int] = []
    for tick in TICKS:
        if not lo < tick <= hi or tick > last:
            continue
        if chosen and x(tick) - x(chosen[-1]) < 60:
            if tick != last:
                continue
            chosen.pop()  # the objective's tick wins over the one crowding it
        chosen.append(tick)
    return chosen


def _name_label(x: float, y: float, name: str) -> str:
    """A scenario's name, cut with an ellipsis, in full on hover."""
    shown = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
    return (
        f'<text x="{x}" y="{y}" text-anchor="end"><title>{html.escape(name)}</title>'
        f"{html.escape(shown)}</text>"
    )


def objective_chart_svg(scenarios: list[ScenarioRecord], which: str = "rto") -> str:
    """Achieved RTO (or RPO) per scenario against its objective, on a log time axis so that
    seconds and a 4-hour objective are both readable; the objective is a mark per row. A
    scenario that failed before the value was measured is drawn as "not reached"."""
    label = which.upper()
    rows = [
        (s, o)
        for s in scenarios
        if s.kind == "scenario" and (o := _objective(s, which)) is not None
    ]
    if not rows:
        return f"<p>No {label} measured.</p>"
    label_w, bar_w, row_h, top = 330, 520, 26, 10
    longest_objective = max(o.objective_s for _, o in rows)
    longest = max(max(o.objective_s, o.achieved_s or 0) for _, o in rows)
    lo = 0.1
    hi = max(longest * 1.5, next((t for t in TICKS if t >= longest_objective), 1.0), 1.0)

    def x(seconds: float) -> float:
        clamped = min(max(seconds, lo), hi)
        return label_w + bar_w * math.log10(clamped / lo) / math.log10(hi / lo)

    height = top + row_h * len(rows) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" '
        f'height="{height}" role="img" aria-label="{label} against objective" '
        'font-family="system-ui,sans-serif" font-size="12">'
    ]
    axis_y = top + row_h * len(rows) + 4
    for tick in _ticks(lo, hi, x, longest_objective):
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{axis_y}" stroke="#eaeef2"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#57606a">'
            f"{_seconds(tick)}</text>"
        )
    for i, (s, o) in enumerate(rows):
        y = top + i * row_h
        goal = x(o.objective_s)
        parts.append(_name_label(label_w - 8, y + 15, s.scenario_id))
        if o.achieved_s is None:
            parts.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{max(goal - label_w, 2):.1f}" '
                'height="14" fill="none" stroke="#cf222e" stroke-dasharray="4 3">'
                f"<title>not reached: {html.escape(s.verdict)}</title></rect>"
                f'<text x="{goal + 5:.1f}" y="{y + 15}" fill="#cf222e">not reached</text>'
            )
        else:
            colour = "#2da44e" if o.met else "#cf222e"
            end = x(o.achieved_s)
            parts.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{max(end - label_w, 2):.1f}" '
                f'height="14" fill="{colour}"><title>{_seconds(o.achieved_s)}</title></rect>'
                f'<text x="{max(end, goal) + 5:.1f}" y="{y + 15}" fill="#1f2328">'
                f"{_seconds(o.achieved_s)}</text>"
            )
        parts.append(
            f'<line x1="{goal:.1f}" y1="{y + 1}" x2="{goal:.1f}" y2="{y + 21}" stroke="#1f2328" '
            f'stroke-width="2"><title>objective {_seconds(o.objective_s)}</title></line>'
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 2}" fill="#57606a">bar: achieved {label}; '
        "black mark: objective; dashed: not reached (log scale)</text></svg>"
    )
    return "".join(parts)


def write_html(
    run_dir: Path, run: RunRecord, redact: Redactor, history: list[RunRecord] | None = None
) -> Path:
    from drtests.evidence.history import trend_svg

    env = Environment(
        loader=PackageLoader("drtests.evidence", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    page = env.get_template("report.html.j2").render(
        run=run,
        rto_chart=objective_chart_svg(run.scenarios, "rto"),
        rpo_chart=objective_chart_svg(run.scenarios, "rpo"),
        trend=trend_svg(history or [run]),
        age_trend=trend_svg(history or [run], "rpo"),
        history_size=len(history or [run]),
        rows=summary_rows(run),
    )
    path = run_dir / "report.html"
    path.write_text(redact(page), encoding="utf-8")
    return path


def write_markdown(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    lines = [
        f"# DR {run.kind} {run.run_id}: {run.outcome}",
        "",
        f"Environment `{run.environment}`, profile `{run.profile_name}`, operator {run.operator}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in summary_rows(run)
    ]
    lines += ["", "## Findings", ""]
    lines += [
        f"- **{f.finding_id}** {f.what}: {f.why}. Escalate to {f.escalation}. "
        f"Follow-up: {f.follow_up}."
        for f in run.findings
    ] or [run.nothing_found]
    lines.append("")
    for checklist in run.checklists:
        done = sum(i.status in {"passed", "attested", "n/a"} for i in checklist.items)
        lines.append(
            f"- {checklist.name}: {done} of {len(checklist.items)} items passed or attested"
        )
    met = sum(c.status == "met" for c in run.clauses)
    validated = sum(c.status == "validated on test data" for c in run.clauses)
    mapping = f"{met} of {len(run.clauses)} clauses met"
    if validated:
        mapping += f", {validated} validated on test data"
    scope = f" (scope: {run.clauses[0].scope})" if run.clauses and run.clauses[0].scope else ""
    lines.append(f"- Compliance mapping: {mapping}{scope}")
    lines.append(f"- {patience_line(run)}")
    path = run_dir / "summary.md"
    path.write_text(redact("\n".join(lines) + "\n"), encoding="utf-8")
    return path
