"""What every fault is: described, its undo captured before any damage, applied, and
reverted exactly.

The order is what makes a fault safe to interrupt. ``capture`` only reads: it takes
everything a revert needs (the rows, the versions, a dump) and the caller persists it in
the fault ledger before ``apply`` breaks anything. A run killed at any point therefore
leaves either nothing broken, or damage whose undo record is already on disk; ``revert``
is idempotent and exact whether the damage happened, happened in part, or not at all.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from drtests.errors import DRError

TargetT = TypeVar("TargetT")


class RevertIncomplete(DRError):
    """A revert could not find what it needs (an undo record, a dump, a copy) or could
    not put everything back: the ledger entry stays pending."""


class FaultTarget(Protocol):
    """What ``inject_fault`` needs of a target: how the safety rails name it (the allow-list
    entry a write to it must match), and a description for the ledger that holds no secret
    (a database target's ``component`` names its ``[postgres.<component>]`` profile entry,
    through which the next run reverts a leftover)."""

    def safety_name(self) -> str: ...

    def describe(self) -> Any: ...


class Fault(ABC, Generic[TargetT]):
    """A fault: ``kind`` names it in the ledger (unique; a package's own faults are found
    by the next run through the ``drtests.faults`` entry point group), ``detected_by``
    names the checks that must report it; its constructor's keyword arguments are its
    ``params`` (kept in the ledger, so they must be JSON)."""

    kind: ClassVar[str]
    #: detection checks that must report this fault
    detected_by: ClassVar[tuple[str, ...]]

    @abstractmethod
    def describe(self) -> str: ...

    def params(self) -> dict[str, Any]:
        return dict(vars(self))

    @abstractmethod
    def capture(self, target: TargetT) -> dict[str, Any]:
        """Read what :meth:`revert` needs; changes nothing on the target."""

    @abstractmethod
    def apply(self, target: TargetT, undo: dict[str, Any]) -> None:
        """Break the target, as recorded in ``undo``."""

    @abstractmethod
    def revert(self, target: TargetT, undo: dict[str, Any]) -> str:
        """Put back what is still broken; idempotent. Returns what was done; raises
        :class:`RevertIncomplete` when it cannot."""

    def inject(self, target: TargetT) -> dict[str, Any]:
        """Capture, then apply (without a ledger in between: for tests that break a
        target on purpose and never revert it)."""
        undo = self.capture(target)
        self.apply(target, undo)
        return undo


def require(undo: dict[str, Any], *keys: str) -> None:
    """The undo record has what a revert needs, or the revert says what is missing."""
    missing = [k for k in keys if k not in undo]
    if missing:
        raise RevertIncomplete(f"the undo record lacks {', '.join(missing)}: nothing reverted")


def discard_undo(undo: dict[str, Any]) -> None:
    """Delete the local copies an undo record names (dumps, object copies) once the fault
    is reverted: they hold the target's data."""
    for key in ("snapshot", "copy"):
        path = Path(str(undo[key])) if key in undo else None
        if path is None:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
