"""The auditor's PDF, drawn with ReportLab: the same content as the HTML report, charts
included, and a sign-off block to sign."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from drtests.evidence.model import ObjectiveResult, RunRecord, ScenarioRecord
from drtests.evidence.render import HEADERS, fmt_objective, summary_rows
from drtests.redaction import Redactor

GREEN, RED, GREY = (
    colors.HexColor("#2da44e"),
    colors.HexColor("#cf222e"),
    colors.HexColor("#57606a"),
)
CELL_LIMIT = 600
_ASCII = str.maketrans({"→": "->", "✔": "ok", "✘": "x", "≤": "<=", "×": "x", "∞": "inf"})


def _styles() -> dict[str, Any]:
    base = getSampleStyleSheet()
    cell = ParagraphStyle("cell", parent=base["BodyText"], fontSize=7.5, leading=9)
    return {
        "title": base["Title"],
        "h2": base["Heading2"],
        "h3": base["Heading3"],
        "body": base["BodyText"],
        "cell": cell,
        "small": ParagraphStyle("small", parent=cell, textColor=GREY),
    }


class _Writer:
    def __init__(self, redact: Redactor) -> None:
        self.redact = redact
        self.s = _styles()

    def p(self, text: str, style: str = "body") -> Paragraph:
        clean = self.redact(str(text)).translate(_ASCII)
        if (
            style == "cell" and len(clean) > CELL_LIMIT
        ):  # a cell taller than a page cannot be laid out
            clean = clean[:CELL_LIMIT] + " … (in full in run.json)"
        return Paragraph(escape(clean), self.s[style])

    def table(self, header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        data = [[self.p(h, "cell") for h in header]] + [
            [self.p(c, "cell") for c in r] for r in rows
        ]
        table = Table(data, colWidths=widths, repeatRows=1)
        style: list[Any] = [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#d0d7de")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f3f5f8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        table.setStyle(TableStyle(style))
        return table


def _bar_chart(title: str, pairs: list[tuple[str, ObjectiveResult]]) -> Drawing:
    """Achieved against objective per scenario, log axis, as in the HTML report."""
    row_h, label_w, bar_w = 14, 190, 250
    height = row_h * len(pairs) + 34
    drawing = Drawing(label_w + bar_w + 60, height)
    drawing.add(String(0, height - 10, title, fontSize=9, fontName="Helvetica-Bold"))
    values = [o.objective_s for _, o in pairs] + [o.achieved_s or 0.1 for _, o in pairs]
    lo, hi = 0.1, max(max(values) * 1.5, 1.0)

    def x(seconds: float) -> float:
        clamped = min(max(seconds, lo), hi)
        return label_w + bar_w * math.log10(clamped / lo) / math.log10(hi / lo)

    for i, (name, objective) in enumerate(pairs):
        y = height - 26 - i * row_h
        drawing.add(String(label_w - 4, y + 2, name[:44], fontSize=6.5, textAnchor="end"))
        achieved = objective.achieved_s or 0.0
        colour = GREEN if objective.met else RED
        bar = Rect(label_w, y, max(x(achieved) - label_w, 1.5), 8)
        bar.fillColor, bar.strokeColor = colour, None
        drawing.add(bar)
        goal = x(objective.objective_s)
        drawing.add(Line(goal, y - 2, goal, y + 10, strokeColor=colors.black, strokeWidth=1.2))
        drawing.add(
            String(x(achieved) + 3, y + 1, fmt_objective(objective).split(" / ")[-1], fontSize=6.5)
        )
    for tick in (1, 10, 60, 300, 1800, 7200):
        if lo < tick <= hi:
            drawing.add(
                String(
                    x(tick),
                    2,
                    f"{tick // 60} min" if tick >= 60 else f"{tick} s",
                    fontSize=6,
                    fillColor=GREY,
                    textAnchor="middle",
                )
            )
    return drawing


def _pairs(run: RunRecord, which: str) -> list[tuple[str, ObjectiveResult]]:
    out = []
    for s in run.scenarios:
        objective = s.rto if which == "rto" else s.rpo
        if s.kind == "scenario" and objective is not None and objective.achieved_s is not None:
            out.append((s.scenario_id, objective))
    return out


def _scenario_section(w: _Writer, s: ScenarioRecord) -> list[Any]:
    flow: list[Any] = [w.p(f"{s.scenario_id} — {s.verdict}", "h3"), w.p(s.title)]
    if s.backup:
        flow.append(w.p(f"Backup: {s.backup}", "small"))
    rows = [
        [
            st.name,
            st.runbook_step,
            f"{st.started_at:%H:%M:%S}",
            f"{st.duration_s:.3f} s",
            st.status,
            st.detail,
        ]
        for st in s.steps
    ]
    if rows:
        flow.append(
            w.table(
                ["Step", "Runbook step", "Start (UTC)", "Duration", "Status", "Detail"],
                rows,
                [32 * mm, 42 * mm, 16 * mm, 15 * mm, 13 * mm, 52 * mm],
            )
        )
    for f in s.faults:
        flow.append(
            w.p(
                f"Fault {f.fault_id}: {f.description}; reverted: {f.revert_detail or 'no'}", "small"
            )
        )
    return [*flow, Spacer(1, 4 * mm)]


def write_pdf(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    w = _Writer(redact)
    path = run_dir / "report.pdf"
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"DR {run.kind} {run.run_id}",
        author="drtests",
    )
    verdict = run.outcome
    flow: list[Any] = [w.p(f"Disaster-recovery {run.kind} — {verdict}", "title")]
    meta = [
        ["Run", run.run_id],
        [
            "Started / finished (UTC)",
            f"{run.started_at:%Y-%m-%d %H:%M:%S} / {run.ended_at:%Y-%m-%d %H:%M:%S}"
            if run.ended_at
            else "—",
        ],
        ["Operator", run.operator],
        ["Environment", run.environment],
        ["Scope", run.scope],
        ["Targets", ", ".join(run.targets)],
        ["Profile", f"{run.profile_name} (sha256 {run.profile_sha256[:16]}…)"],
        ["Runbooks", "; ".join(f"{k} {v[:16]}…" for k, v in run.runbooks.items())],
        ["Participants", "; ".join(f"{p.name} ({p.role})" for p in run.participants)],
    ]
    flow += [w.table(["", ""], meta, [40 * mm, 140 * mm]), Spacer(1, 5 * mm)]
    for which, title in (
        ("rto", "RTO achieved against objective"),
        ("rpo", "RPO achieved against objective"),
    ):
        pairs = _pairs(run, which)
        if pairs:
            flow += [_bar_chart(title, pairs), Spacer(1, 3 * mm)]
    flow.append(w.p("Summary", "h2"))
    flow.append(
        w.table(
            HEADERS,
            summary_rows(run),
            [40 * mm, 22 * mm, 34 * mm, 13 * mm, 13 * mm, 21 * mm, 21 * mm, 18 * mm],
        )
    )
    flow.append(w.p("Findings", "h2"))
    if run.findings:
        flow.append(
            w.table(
                ["Id", "What", "Why", "Remediation", "Escalation", "Follow-up"],
                [
                    [
                        f.finding_id,
                        f.what,
                        f.why,
                        f.remediation,
                        f"{f.escalation}: {f.escalation_reason}",
                        f.follow_up + (f" ({f.follow_up_by})" if f.follow_up_by else ""),
                    ]
                    for f in run.findings
                ],
                [12 * mm, 30 * mm, 40 * mm, 36 * mm, 40 * mm, 24 * mm],
            )
        )
    else:
        flow.append(w.p(run.nothing_found))
    for checklist in run.checklists:
        flow.append(
            KeepTogether(
                [
                    w.p(f"{checklist.name} ({checklist.source})", "h2"),
                    w.table(
                        ["Item", "Status", "Evidence / attested by"],
                        [
                            [i.item, i.status, i.attested_by or "; ".join(i.evidence[:4])]
                            for i in checklist.items
                        ],
                        [60 * mm, 22 * mm, 100 * mm],
                    ),
                ]
            )
        )
    flow.append(w.p("Compliance mapping", "h2"))
    if run.clauses and run.clauses[0].scope:
        flow.append(w.p(f"Scope: {run.clauses[0].scope}"))
    flow.append(
        w.table(
            ["Framework", "Clause", "Requirement", "Criteria", "Status", "Evidence"],
            [
                [
                    c.framework,
                    c.clause,
                    c.requirement,
                    c.criteria,
                    c.status,
                    "; ".join(c.evidence[:3]),
                ]
                for c in run.clauses
            ],
            [22 * mm, 14 * mm, 38 * mm, 38 * mm, 18 * mm, 52 * mm],
        )
    )
    flow.append(
        KeepTogether(
            [
                w.p("Sign-off", "h2"),
                w.table(
                    ["Name", "Role", "Signature", "Date"],
                    [[p.name, p.role, "", ""] for p in run.participants]
                    + [["", "Approver", "", ""]],
                    [50 * mm, 45 * mm, 55 * mm, 32 * mm],
                ),
            ]
        )
    )
    flow.append(PageBreak())
    flow.append(w.p("Scenarios", "h2"))
    for s in run.scenarios:
        flow += _scenario_section(w, s)
    doc.build(flow)
    return path
