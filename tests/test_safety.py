"""Safety rails: allow-list, --dr-allow-destructive, production confirmation, dry run."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtests.config import Profile, Safety
from drtests.errors import SafetyError
from drtests.safety import DryRunStop, SafetyRails

TARGET = "postgresql://db.internal:5432/metastore"


def _rails(allow: tuple[str, ...] = (), production: bool = False, **kw: object) -> SafetyRails:
    profile = Profile(name="prod", safety=Safety(allow_list=allow, production=production))
    return SafetyRails(profile, **kw)  # type: ignore[arg-type]


def test_target_not_on_allow_list_is_refused() -> None:
    with pytest.raises(SafetyError, match="not on the allow-list"):
        _rails(allow_destructive=True).authorize(TARGET, "inject fault x")


def test_allow_listed_target_still_needs_the_flag() -> None:
    with pytest.raises(SafetyError, match="--dr-allow-destructive"):
        _rails(allow=("postgresql://db.internal:*",)).authorize(TARGET, "inject fault x")


def test_production_needs_the_typed_confirmation() -> None:
    rails = _rails(allow=(TARGET,), production=True, allow_destructive=True)
    with pytest.raises(SafetyError, match="--dr-confirm-production prod"):
        rails.authorize(TARGET, "restore")
    rails.confirmation = "prod"
    rails.authorize(TARGET, "restore")


def test_dry_run_records_the_plan_and_stops(tmp_path: Path) -> None:
    rails = _rails(allow=(TARGET,), allow_destructive=True, dry_run=True)
    rails.plan_file = tmp_path / "plan.txt"
    with pytest.raises(DryRunStop):
        rails.authorize(TARGET, "inject fault x")
    assert rails.plan_file.read_text() == f"inject fault x on {TARGET}\n"


def test_targets_created_by_the_run_need_no_flag() -> None:
    rails = _rails(ephemeral_targets={"postgresql://127.0.0.1:5555/*"})
    rails.authorize("postgresql://127.0.0.1:5555/metastore_001", "inject fault x")
