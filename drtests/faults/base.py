"""What every fault is: described, injected with an undo record, reverted exactly."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

TargetT = TypeVar("TargetT")


class Fault(ABC, Generic[TargetT]):
    kind: ClassVar[str]
    #: detection checks that must report this fault
    detected_by: ClassVar[tuple[str, ...]]

    @abstractmethod
    def describe(self) -> str: ...

    def params(self) -> dict[str, Any]:
        return dict(vars(self))

    @abstractmethod
    def inject(self, target: TargetT) -> dict[str, Any]:
        """Break the target; return what :meth:`revert` needs."""

    @abstractmethod
    def revert(self, target: TargetT, undo: dict[str, Any]) -> str:
        """Put back what is still broken; idempotent. Returns what was done."""
