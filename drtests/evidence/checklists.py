"""The restore procedure's Pre-Restore Checklist and Post-Restore Validation checklist,
each item checked from the run's evidence or attested by a named person."""

from __future__ import annotations

from collections.abc import Callable

from drtests.config import Profile
from drtests.evidence.model import (
    Attestation,
    Checklist,
    ChecklistItem,
    ChecklistStatus,
    ScenarioRecord,
)

SOURCE = "000 Restore Procedure"
Rule = Callable[[list[ScenarioRecord]], tuple[ChecklistStatus, list[str]]]


# the restores from backup that the Restore Procedure's checklists are about; repairs,
# point-in-time recovery, rollbacks, pod kills and readiness have their own evidence
CHECKLIST_PROCEDURES = frozenset(
    {"hms_full_restore", "s3_version_restore", "s3_archive_restore", "s3_dr_restore"}
)


def _restores(records: list[ScenarioRecord]) -> list[ScenarioRecord]:
    return [
        r
        for r in records
        if r.kind == "scenario" and r.verdict != "dry-run" and r.procedure in CHECKLIST_PROCEDURES
    ]


def _step(**by_procedure: tuple[str, ...]) -> Rule:
    """Passed when every restore scenario of the named procedures (keyword: procedure name
    prefix) ran the given steps and each passed; other procedures have no say."""

    def rule(records: list[ScenarioRecord]) -> tuple[ChecklistStatus, list[str]]:
        restores = _restores(records)
        if not restores:
            return "not-run", []
        evidence, ok, judged = [], True, 0
        for record in restores:
            names = next(
                (v for k, v in by_procedure.items() if record.procedure.startswith(k)), None
            )
            if names is None:
                continue
            judged += 1
            for name in names:
                # the last run of a step decides: a backup rejected before a good one was found
                # is the fallback working, not a failed checklist item
                step = next((st for st in reversed(record.steps) if st.name == name), None)
                if step is None or step.status != "passed":
                    ok = False
                    evidence.append(
                        f"{record.scenario_id}: {name} {'missing' if step is None else step.status}"
                    )
                else:
                    evidence.append(f"{record.scenario_id}: {name}: {step.detail}".rstrip(": "))
        if not judged:
            return "n/a", ["no scenario of this run has this step"]
        return ("passed" if ok else "failed"), evidence

    return rule


def _checks_clean(
    records: list[ScenarioRecord], names: tuple[str, ...]
) -> tuple[ChecklistStatus, list[str]]:
    """Passed when each named verification check ran clean in every record; evidence per
    record and check."""
    evidence, ok = [], True
    for record in records:
        for name in names:
            check = next((c for c in record.verification if c.name == name), None)
            passed = check is not None and check.ok
            ok &= passed
            evidence.append(f"{record.scenario_id}: {name} {'ok' if passed else 'FAILED'}")
    return ("passed" if ok else "failed"), evidence


def _check(*names: str) -> Rule:
    """Passed when these verification checks were clean in every restore scenario."""

    def rule(records: list[ScenarioRecord]) -> tuple[ChecklistStatus, list[str]]:
        restores = [r for r in _restores(records) if r.verification]
        if not restores:
            return "not-run", []
        return _checks_clean(restores, names)

    return rule


def _health(records: list[ScenarioRecord]) -> tuple[ChecklistStatus, list[str]]:
    """Passed when every restore whose verification asked Prometheus found it healthy."""
    watched = [
        (r, [c for c in r.verification if c.name.startswith("health_")]) for r in _restores(records)
    ]
    watched = [(r, checks) for r, checks in watched if checks]
    if not watched:
        return "not-run", ["no restore in this run was verified against Prometheus"]
    evidence = [
        f"{r.scenario_id}: {c.name} {'ok' if c.ok else 'FAILED'}"
        for r, checks in watched
        for c in checks
    ]
    ok = all(c.ok for _, checks in watched for c in checks)
    return ("passed" if ok else "failed"), evidence


def _application(procedure: str, *checks: str) -> Rule:
    """Passed when every restore of this application (Airflow's, MLflow's) was verified
    with these checks clean; not run when the run had none."""

    def rule(records: list[ScenarioRecord]) -> tuple[ChecklistStatus, list[str]]:
        ran = [
            r
            for r in records
            if r.kind == "scenario" and r.verdict != "dry-run" and r.procedure == procedure
        ]
        if not ran:
            return "not-run", [f"no {procedure} scenario in this run"]
        return _checks_clean(ran, checks)

    return rule


# item text as in the runbook → (attestation key or None, rule)
TARGET_READY = ("Check restore target ready",)
PRE_RESTORE: list[tuple[str, str | None, Rule | None]] = [
    (
        "Backup identified and verified",
        None,
        _step(
            hms_=("Identify last good backup", "Verify checksum"),
            s3_archive=("Verify archive against manifest",),
            s3_dr=("Replicate to DR region",),
            s3_version=("List object versions",),
        ),
    ),
    (
        "Checksum validated",
        None,
        _step(hms_=("Verify checksum",), s3_archive=("Verify archive against manifest",)),
    ),
    ("Restore target environment ready", None, _step(hms_=TARGET_READY, s3_=TARGET_READY)),
    ("Stakeholders notified", "stakeholders-notified", None),
    ("Maintenance window scheduled (if production)", "maintenance-window", None),
    # HMS: the safety snapshot; S3: restores only add versions to a versioned bucket (checked
    # when the target was found ready), so the previous state stays as noncurrent versions
    ("Rollback plan documented", None, _step(hms_=("Take safety snapshot",), s3_=TARGET_READY)),
]
POST_RESTORE: list[tuple[str, str | None, Rule | None]] = [
    (
        "All services started successfully",
        None,
        _step(hms_=("Scale up metastore and wait ready", "Restart dependent services")),
    ),
    ("Hive Metastore connectivity verified", None, _check("metastore_accessible")),
    (
        "Tables and partitions accessible",
        None,
        _check("table_count_per_database", "orphaned_partitions", "missing_storage_descriptors"),
    ),
    (
        "Data integrity verified (checksums)",
        None,
        _check("fingerprints_match_baseline", "s3_paths_exist"),
    ),
    (
        "Airflow DAGs loaded successfully",
        None,
        _application("airflow_restore", "airflow_dags_load", "airflow_api_accessible"),
    ),
    (
        "MLflow experiments accessible",
        None,
        _application("mlflow_restore", "mlflow_experiments_match", "mlflow_runs_match"),
    ),
    ("Test job completed successfully", None, _step(hms_full=("Run test job",))),
    ("Monitoring shows healthy state", None, _health),
]


def attestations_of(profile: Profile, extra: list[Attestation]) -> list[Attestation]:
    from_profile = [
        Attestation(item=a.item, by=a.by, role=a.role, note=a.note) for a in profile.attestations
    ]
    return [*from_profile, *extra]


def _evaluate(
    items: list[tuple[str, str | None, Rule | None]],
    records: list[ScenarioRecord],
    attestations: list[Attestation],
    production: bool,
) -> list[ChecklistItem]:
    out: list[ChecklistItem] = []
    for text, key, rule in items:
        if rule is not None:
            status, evidence = rule(records)
            out.append(ChecklistItem(item=text, status=status, evidence=evidence))
            continue
        attested = next((a for a in attestations if a.item == key), None)
        if attested is not None:
            who = f"{attested.by}" + (f" ({attested.role})" if attested.role else "")
            out.append(
                ChecklistItem(
                    item=text,
                    status="attested",
                    attested_by=who,
                    evidence=[attested.note] if attested.note else [],
                )
            )
        elif key == "maintenance-window" and not production:
            out.append(ChecklistItem(item=text, status="n/a", evidence=["target not production"]))
        else:
            out.append(
                ChecklistItem(
                    item=text,
                    status="not-attested",
                    evidence=[f"attest with --dr-attest {key}=NAME"],
                )
            )
    return out


def build_checklists(
    records: list[ScenarioRecord], attestations: list[Attestation], production: bool
) -> list[Checklist]:
    return [
        Checklist(
            name="Pre-Restore Checklist",
            source=SOURCE,
            items=_evaluate(PRE_RESTORE, records, attestations, production),
        ),
        Checklist(
            name="Post-Restore Validation",
            source=SOURCE,
            items=_evaluate(POST_RESTORE, records, attestations, production),
        ),
    ]
