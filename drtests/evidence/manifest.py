"""Tamper evidence: a SHA-256 manifest that chains every evidence file of a run.

Entry *i* carries the file's own SHA-256 and ``chain_i = SHA-256(chain_{i-1} | path | sha)``;
the last chain value (the head) stands for the whole folder, so recording it anywhere else
(a ticket, a CI log) pins the evidence. ``SHA256SUMS`` beside it lets ``sha256sum -c`` check
the files with standard tools.

The PDF is chained last: it prints on every page the chain value of the entry before it
(the evidence head, over every other file), since no file can carry its own hash. The
signatures made later (``signature/``) sign the head and are not part of what they sign.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.sha256.json"
SUMS = "SHA256SUMS"
SIGNATURES = "signature"
CHAINED_LAST = "report.pdf"
GENESIS = "0" * 64


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _evidence_files(run_dir: Path) -> list[str]:
    """Every file the manifest covers, in chain order: sorted, the PDF last."""
    return sorted(
        (
            rel
            for p in run_dir.rglob("*")
            if p.is_file()
            and (rel := p.relative_to(run_dir).as_posix()) not in {MANIFEST, SUMS}
            and not rel.startswith(f"{SIGNATURES}/")
        ),
        key=lambda rel: (rel == CHAINED_LAST, rel),
    )


def _link(previous: str, path: str, sha: str) -> str:
    return hashlib.sha256(f"{previous}|{path}|{sha}".encode()).hexdigest()


def evidence_head(run_dir: Path) -> str:
    """The chain over every evidence file but the PDF: what the PDF prints as its evidence."""
    chain = GENESIS
    for rel in _evidence_files(run_dir):
        if rel != CHAINED_LAST:
            chain = _link(chain, rel, _file_sha256(run_dir / rel))
    return chain


def recorded_evidence_head(run_dir: Path) -> str | None:
    """The chain value before the PDF's entry, as the manifest records it."""
    try:
        entries = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    previous = GENESIS
    for entry in entries:
        if entry.get("path") == CHAINED_LAST:
            return str(previous)
        previous = entry.get("chain", "")
    return None


def recorded_head(run_dir: Path) -> str | None:
    try:
        return str(json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))["head"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_manifest(run_dir: Path) -> str:
    """Hash and chain every file in the run folder; returns the head."""
    entries, chain = [], GENESIS
    for rel in _evidence_files(run_dir):
        path = run_dir / rel
        sha = _file_sha256(path)
        chain = _link(chain, rel, sha)
        entries.append({"path": rel, "sha256": sha, "size": path.stat().st_size, "chain": chain})
    document = {"algorithm": "sha256", "genesis": GENESIS, "entries": entries, "head": chain}
    (run_dir / MANIFEST).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (run_dir / SUMS).write_text("".join(f"{e['sha256']}  {e['path']}\n" for e in entries))
    return chain


@dataclass(frozen=True)
class Problem:
    kind: str  # modified, added, removed, chain-broken, manifest-missing
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def verify_manifest(run_dir: Path, expected_head: str | None = None) -> list[Problem]:
    """Every way the folder differs from its manifest, each named with its file."""
    manifest_path = run_dir / MANIFEST
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8"))
        entries = document["entries"]
    except FileNotFoundError:
        return [Problem("manifest-missing", MANIFEST)]
    except (ValueError, KeyError, TypeError):
        return [Problem("chain-broken", MANIFEST, "manifest is not a valid manifest document")]
    problems: list[Problem] = []
    chain = document.get("genesis", GENESIS)
    for index, entry in enumerate(entries):
        chain = _link(chain, entry["path"], entry["sha256"])
        if chain != entry.get("chain"):
            problems.append(Problem("chain-broken", entry["path"], f"entry {index} altered"))
            break
    if not problems and chain != document.get("head"):
        problems.append(Problem("chain-broken", MANIFEST, "head does not match the entries"))
    if expected_head is not None and document.get("head") != expected_head:
        problems.append(Problem("chain-broken", MANIFEST, "head differs from the recorded one"))
    listed = {e["path"]: e for e in entries}
    present = set(_evidence_files(run_dir))
    for rel in sorted(set(listed) - present):
        problems.append(Problem("removed", rel))
    for rel in sorted(present - set(listed)):
        problems.append(Problem("added", rel))
    for rel in sorted(present & set(listed)):
        if _file_sha256(run_dir / rel) != listed[rel]["sha256"]:
            problems.append(Problem("modified", rel))
    return problems
