"""Safety rails for live targets: allow-list, ``--dr-allow-destructive``, a typed
confirmation for production, and ``--dr-dry-run`` that writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from drtests.config import Profile
from drtests.errors import SafetyError


class DryRunStop(Exception):
    """Raised instead of performing a write during a dry run; carries the plan line."""


class WriteGate(Protocol):
    """What every write to a target the run does not own passes: the S3 client's
    mutating requests and the PostgreSQL connections of a live environment."""

    def authorize(self, target: str, action: str) -> None: ...

    def writes_possible(self, prefix: str) -> bool: ...


@dataclass
class SafetyRails:
    profile: Profile
    allow_destructive: bool = False
    dry_run: bool = False
    confirmation: str | None = None
    ephemeral_targets: set[str] = field(default_factory=set)
    plan: list[str] = field(default_factory=list)
    plan_file: Path | None = None
    #: how the caller spells the flags, so a refusal names the one the user can type
    destructive_flag: str = "--dr-allow-destructive"
    confirm_flag: str = "--dr-confirm-production"

    def __post_init__(self) -> None:
        scratch = self.profile.restore_test.scratch_dsn
        if scratch is not None:
            # the restore test's own databases on the scratch server the profile names
            parts = urlsplit(scratch.get_secret_value())
            where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
            self.ephemeral_targets.add(f"postgresql://{where}/drtests_rt_*")

    def authorize(self, target: str, action: str) -> None:
        """Allow ``action`` on ``target`` or raise; in a dry run, record it and stop."""
        if self.dry_run:
            self.plan.append(f"{action} on {target}")
            if self.plan_file is not None:
                with self.plan_file.open("a", encoding="utf-8") as handle:
                    handle.write(f"{action} on {target}\n")
            raise DryRunStop(f"dry run: would {action} on {target}")
        if any(fnmatch(target, pattern) for pattern in self.ephemeral_targets):
            return  # created by this run (embedded environment): nothing else lives there
        if not any(fnmatch(target, pattern) for pattern in self.profile.safety.allow_list):
            raise SafetyError(
                f"refusing to {action} on {target}: not on the allow-list of profile "
                f"{self.profile.name!r} ([safety] allow_list)"
            )
        if not self.allow_destructive:
            raise SafetyError(
                f"refusing to {action} on {target}: "
                f"destructive actions need {self.destructive_flag}"
            )
        if self.profile.safety.production and self.confirmation != self.profile.name:
            raise SafetyError(
                f"refusing to {action} on production target {target}: confirm with "
                f"{self.confirm_flag} {self.profile.name}"
            )

    def writes_possible(self, prefix: str) -> bool:
        """Could any write under ``prefix`` (e.g. ``postgresql://host:5432/``) pass? False
        in a dry run, without the destructive flag, without the production confirmation,
        or when no allow-list entry reaches below ``prefix``: then connections there are
        opened read-only, and the server itself refuses what the rails would."""
        if self.dry_run:
            return False
        if any(fnmatch(prefix + "x", p) or p.startswith(prefix) for p in self.ephemeral_targets):
            return True
        if not self.allow_destructive:
            return False
        if self.profile.safety.production and self.confirmation != self.profile.name:
            return False
        return any(
            fnmatch(prefix + "x", p) or p.startswith(prefix) for p in self.profile.safety.allow_list
        )
