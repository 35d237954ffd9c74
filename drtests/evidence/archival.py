"""The PDF as an archival record (PDF/A-3b): XMP identification, an sRGB output intent, and
the run document carried inside as an associated file.

ReportLab lays the pages out with embedded TrueType fonts; pikepdf adds what ISO 19005-3
asks of the document around them. The run document rides along because an auditor keeps
the PDF, not the folder: the data behind every table stays with the report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pikepdf
from PIL import ImageCms

PDFA_PART, PDFA_CONFORMANCE = "3", "B"
# in Keywords, which has an XMP equivalent (pdf:Keywords): PDF/A asks the document
# information and the XMP to agree, and custom keys have no XMP counterpart
RUN_ID, EVIDENCE_HEAD = "run-id", "evidence-head"


def _srgb_profile() -> bytes:
    """An sRGB ICC profile built by LittleCMS: the colour space every page is drawn in."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")


def make_archival(
    path: Path, *, title: str, run_id: str, evidence_head: str, attachment: Path
) -> None:
    """Turn the PDF at ``path`` into PDF/A-3b in place, with ``attachment`` embedded."""
    now = _pdf_date(datetime.now(UTC))
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.docinfo["/Title"] = title
        pdf.docinfo["/Author"] = "drtests"
        pdf.docinfo["/Subject"] = f"Disaster-recovery evidence, run {run_id}"
        if "/Trapped" in pdf.docinfo:  # optional, and pikepdf has no XMP mapping for it
            del pdf.docinfo["/Trapped"]
        pdf.docinfo["/Keywords"] = f"{RUN_ID}={run_id} {EVIDENCE_HEAD}={evidence_head}"
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta.load_from_docinfo(pdf.docinfo)
            meta["pdfaid:part"] = PDFA_PART
            meta["pdfaid:conformance"] = PDFA_CONFORMANCE
        profile = pikepdf.Stream(pdf, _srgb_profile())
        profile["/N"] = 3
        pdf.Root.OutputIntents = pikepdf.Array(
            [
                pikepdf.Dictionary(
                    Type=pikepdf.Name.OutputIntent,
                    S=pikepdf.Name.GTS_PDFA1,
                    OutputConditionIdentifier="sRGB IEC61966-2.1",
                    Info="sRGB IEC61966-2.1",
                    DestOutputProfile=profile,
                )
            ]
        )
        spec = pikepdf.AttachedFileSpec(
            pdf,
            attachment.read_bytes(),
            description="The run document every table of this report is drawn from",
            filename=attachment.name,
            mime_type="application/json",
            creation_date=now,
            mod_date=now,
            relationship=pikepdf.Name.Source,
        )
        pdf.attachments[attachment.name] = spec
        pdf.Root.AF = pikepdf.Array([spec.obj])
        pdf.save(path, fix_metadata_version=True, deterministic_id=False)


def archival_facts(path: Path) -> dict[str, str]:
    """What the PDF says about itself: run id, evidence head, PDF/A identification."""
    with pikepdf.open(path) as pdf:
        meta = pdf.open_metadata()
        keywords = dict(
            word.split("=", 1) for word in str(meta.get("pdf:Keywords", "")).split() if "=" in word
        )
        return {
            "run_id": keywords.get(RUN_ID, ""),
            "evidence_head": keywords.get(EVIDENCE_HEAD, ""),
            "pdfa": f"{meta.get('pdfaid:part', '')}{meta.get('pdfaid:conformance', '')}",
        }
