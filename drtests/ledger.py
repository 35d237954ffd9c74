"""The persisted fault ledger, written ahead of the damage: a fault's intent (``begin``),
then its undo record (``captured``, read from the target before anything changes), each
flushed to disk (fsync) before the next step; then the damage (``injected``) and its
revert. Whatever a killed run left is found and reverted by the next one: an entry killed
before its capture changed nothing; one killed after it has its undo on disk.
An append-only JSON-lines file, locked for concurrent workers, readable by its owner only
(undo records hold data).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerEntry:
    fault_id: str
    kind: str
    description: str
    target: dict[str, Any]
    params: dict[str, Any]
    undo: dict[str, Any] = field(default_factory=dict)
    status: str = "injecting"
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        """The damage may be there: captured (killed before or during the damage),
        injected, or a revert that did not finish."""
        return self.status in {"captured", "injected", "revert-failed"}

    @property
    def never_applied(self) -> bool:
        """Killed before its undo record was on disk: the damage never started."""
        return self.status == "injecting"


class FaultLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, record: dict[str, Any]) -> None:
        """One line, on disk (fsync) before this returns: the next step may be a kill."""
        record["at"] = utcnow().isoformat()
        line = json.dumps(record, default=str) + "\n"
        with self._locked():
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(descriptor).st_size
                if size and os.pread(descriptor, 1, size - 1) != b"\n":
                    line = "\n" + line  # a line torn by a kill: never glue onto it
                os.write(descriptor, line.encode("utf-8"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def begin(
        self, kind: str, description: str, target: dict[str, Any], params: dict[str, Any]
    ) -> str:
        fault_id = uuid.uuid4().hex[:12]
        self._append(
            {
                "event": "begin",
                "fault_id": fault_id,
                "kind": kind,
                "description": description,
                "target": target,
                "params": params,
            }
        )
        return fault_id

    def captured(self, fault_id: str, undo: dict[str, Any]) -> None:
        """The undo record, persisted before the damage starts."""
        self._append({"event": "captured", "fault_id": fault_id, "undo": undo})

    def injected(self, fault_id: str, undo: dict[str, Any] | None = None) -> None:
        record: dict[str, Any] = {"event": "injected", "fault_id": fault_id}
        if undo is not None:
            record["undo"] = undo
        self._append(record)

    def reverted(self, fault_id: str, detail: str) -> None:
        self._append({"event": "reverted", "fault_id": fault_id, "detail": detail})

    def revert_failed(self, fault_id: str, detail: str) -> None:
        self._append({"event": "revert-failed", "fault_id": fault_id, "detail": detail})

    def discarded(self, fault_id: str, detail: str) -> None:
        self._append({"event": "discarded", "fault_id": fault_id, "detail": detail})

    def entries(self) -> list[LedgerEntry]:
        if not self.path.exists():
            return []
        entries: dict[str, LedgerEntry] = {}
        with self._locked():
            lines = self.path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill mid-write
            if not isinstance(rec, dict) or "event" not in rec:
                continue  # not a ledger record
            fid = rec.get("fault_id", "")
            if rec["event"] == "begin" and "kind" in rec:
                entries[fid] = LedgerEntry(
                    fid,
                    str(rec["kind"]),
                    str(rec.get("description", "")),
                    dict(rec.get("target") or {}),
                    dict(rec.get("params") or {}),
                )
            entry = entries.get(fid)
            if entry is None:
                continue
            entry.events.append(rec)
            if rec["event"] in {"captured", "injected"}:
                entry.undo = rec.get("undo", entry.undo)
                entry.status = rec["event"]
            elif rec["event"] in {"reverted", "revert-failed", "discarded"}:
                entry.status = rec["event"]
        return list(entries.values())

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries() if e.pending]
