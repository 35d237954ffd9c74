"""The auditor's PDF, drawn with ReportLab: the same content as the HTML report, charts
included, every page numbered and naming its run and evidence, the sign-off last; then made
an archival PDF/A-3b with the run document inside."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from drtests.evidence.archival import make_archival
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


FONT, BOLD = "DRVera", "DRVera-Bold"


@functools.cache
def _register_fonts() -> None:
    """Bitstream Vera, shipped inside ReportLab: every glyph is embedded in the PDF, which
    PDF/A requires and the standard 14 fonts never are."""
    folder = Path(reportlab.__file__).parent / "fonts"
    faces = {
        FONT: "Vera.ttf",
        BOLD: "VeraBd.ttf",
        "DRVera-Italic": "VeraIt.ttf",
        "DRVera-BoldItalic": "VeraBI.ttf",
    }
    for name, file in faces.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=BOLD, italic="DRVera-Italic", boldItalic="DRVera-BoldItalic"
    )


def _styles() -> dict[str, Any]:
    _register_fonts()
    base = getSampleStyleSheet()

    def face(style: Any, name: str, font: str = FONT, **extra: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=style, fontName=font, **extra)

    cell = face(base["BodyText"], "cell", fontSize=7.5, leading=9)
    return {
        "title": face(base["Title"], "dr-title", BOLD),
        "h2": face(base["Heading2"], "dr-h2", BOLD),
        "h3": face(base["Heading3"], "dr-h3", BOLD),
        "body": face(base["BodyText"], "dr-body"),
        "cell": cell,
        "small": ParagraphStyle("small", parent=cell, textColor=GREY),
    }


class _FooterCanvas(Canvas):
    """Numbers every page "n of N" and names the run and its evidence on each: a page
    printed or cut out of the report still says where it belongs."""

    def __init__(self, filename: str, *, footer: str, **kwargs: Any) -> None:
        kwargs["initialFontName"] = FONT  # no Helvetica: it would not be embedded
        super().__init__(filename, **kwargs)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, 1):
            self.__dict__.update(state)
            self.setFont(FONT, 6.5)
            self.setFillColor(GREY)
            self.drawString(14 * mm, 8 * mm, self._footer)
            self.drawRightString(A4[0] - 14 * mm, 8 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


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

    def table(
        self,
        header: list[str],
        rows: list[list[str]],
        widths: list[float],
        row_height: float | None = None,
    ) -> Table:
        data = [[self.p(h, "cell") for h in header]] + [
            [self.p(c, "cell") for c in r] for r in rows
        ]
        heights = None if row_height is None else [None] + [row_height] * len(rows)
        table = Table(data, colWidths=widths, rowHeights=heights, repeatRows=1)
        style: list[Any] = [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#d0d7de")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f3f5f8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONTNAME", (0, 0), (-1, -1), FONT),  # a table's own default is Helvetica
        ]
        table.setStyle(TableStyle(style))
        return table


TICKS = (1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600)


def _tick_label(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def _bar_chart(title: str, pairs: list[tuple[str, ObjectiveResult]]) -> Drawing:
    """Achieved against objective per scenario, log axis, as in the HTML report; a scenario
    that never reached the point of measuring is drawn as "not reached", not left out."""
    row_h, label_w, bar_w = 14, 190, 250
    height = row_h * len(pairs) + 34
    drawing = Drawing(label_w + bar_w + 60, height, initialFontName=FONT)
    drawing.add(String(0, height - 10, title, fontSize=9, fontName=BOLD))
    finite = [o.objective_s for _, o in pairs if math.isfinite(o.objective_s)]
    finite += [o.achieved_s for _, o in pairs if o.achieved_s and math.isfinite(o.achieved_s)]
    lo, hi = 0.1, max(max(finite, default=1.0) * 1.5, 1.0)

    def x(seconds: float) -> float:
        clamped = min(max(seconds, lo), hi)
        return label_w + bar_w * math.log10(clamped / lo) / math.log10(hi / lo)

    for i, (name, objective) in enumerate(pairs):
        y = height - 26 - i * row_h
        label = name if len(name) <= 44 else name[:43] + "…"
        drawing.add(
            String(label_w - 4, y + 2, label, fontSize=6.5, fontName=FONT, textAnchor="end")
        )
        goal = x(objective.objective_s)
        drawing.add(Line(goal, y - 2, goal, y + 10, strokeColor=colors.black, strokeWidth=1.2))
        if objective.achieved_s is None:
            drawing.add(
                String(
                    label_w + 3, y + 1, "not reached", fontSize=6.5, fontName=FONT, fillColor=RED
                )
            )
            continue
        achieved = objective.achieved_s
        bar = Rect(label_w, y, max(x(achieved) - label_w, 1.5), 8)
        bar.fillColor, bar.strokeColor = (GREEN if objective.met else RED), None
        drawing.add(bar)
        drawing.add(
            String(
                x(achieved) + 3,
                y + 1,
                fmt_objective(objective).split(" / ")[-1],
                fontSize=6.5,
                fontName=FONT,
            )
        )
    for tick in TICKS:
        if lo < tick <= hi:
            drawing.add(
                String(
                    x(tick),
                    2,
                    _tick_label(tick),
                    fontSize=6,
                    fontName=FONT,
                    fillColor=GREY,
                    textAnchor="middle",
                )
            )
    return drawing


def _pairs(run: RunRecord, which: str) -> list[tuple[str, ObjectiveResult]]:
    out = []
    for s in run.scenarios:
        objective = s.rto if which == "rto" else s.rpo
        if s.kind == "scenario" and objective is not None:
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


def _sign_off(w: _Writer, run: RunRecord) -> list[Any]:
    """The last page: each participant by name and role, and an approver, with the fields
    they fill in. Approvers come from the profile's participants (a role naming approval)."""
    people = [[p.name, p.role] for p in run.participants]
    if not any("approv" in p.role.lower() for p in run.participants):
        people.append(["Name: ____________________", "Approver"])
    statement = (
        f"By signing, each person below confirms that this report is a true record of the "
        f"{run.kind} {run.run_id} and that the findings have an owner. The evidence it names "
        "is fixed by the manifest head printed at the foot of every page."
    )
    return [
        PageBreak(),
        w.p("Sign-off", "h2"),
        w.p(statement),
        Spacer(1, 3 * mm),
        w.table(
            ["Name", "Role", "Signature", "Date"],
            [[name, role, "", ""] for name, role in people],
            [50 * mm, 45 * mm, 55 * mm, 32 * mm],
            row_height=14 * mm,
        ),
    ]


def write_pdf(run_dir: Path, run: RunRecord, redact: Redactor, evidence_head: str) -> Path:
    """``evidence_head``: the manifest chain over every other file of the run, which the
    PDF cannot include about itself; the manifest puts the PDF last so that the entry
    before it carries this value."""
    w = _Writer(redact)
    path = run_dir / "report.pdf"
    title = f"DR {run.kind} {run.run_id}"
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=title,
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
    for which, heading in (
        ("rto", "RTO achieved against objective"),
        ("rpo", "RPO achieved against objective"),
    ):
        pairs = _pairs(run, which)
        if pairs:
            flow += [_bar_chart(heading, pairs), Spacer(1, 3 * mm)]
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
    flow.append(PageBreak())
    flow.append(w.p("Scenarios", "h2"))
    for s in run.scenarios:
        flow += _scenario_section(w, s)
    flow += _sign_off(w, run)
    footer = f"{title} · evidence manifest head {evidence_head}"
    doc.build(flow, canvasmaker=functools.partial(_FooterCanvas, footer=footer))
    make_archival(
        path,
        title=title,
        run_id=run.run_id,
        evidence_head=evidence_head,
        attachment=run_dir / "run.json",
    )
    return path
