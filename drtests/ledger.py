"""The persisted fault ledger: every injected fault is written down before it is injected,
and its revert after; whatever a killed run left un-reverted is found and reverted by the
next one. An append-only JSON-lines file, locked for concurrent workers.
"""

from __future__ import annotations

import fcntl
import json
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
        return self.status in {"injecting", "injected", "revert-failed"}


class FaultLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, record: dict[str, Any]) -> None:
        record["at"] = utcnow().isoformat()
        with self._locked(), self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()

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

    def injected(self, fault_id: str, undo: dict[str, Any]) -> None:
        self._append({"event": "injected", "fault_id": fault_id, "undo": undo})

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
            fid = rec.get("fault_id", "")
            if rec.get("event") == "begin":
                entries[fid] = LedgerEntry(
                    fid, rec["kind"], rec["description"], rec["target"], rec.get("params", {})
                )
            entry = entries.get(fid)
            if entry is None:
                continue
            entry.events.append(rec)
            if rec["event"] == "injected":
                entry.undo = rec.get("undo", {})
                entry.status = "injected"
            elif rec["event"] in {"reverted", "revert-failed", "discarded"}:
                entry.status = rec["event"]
        return list(entries.values())

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries() if e.pending]
