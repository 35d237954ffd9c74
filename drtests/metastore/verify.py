"""Baseline and verification of a metastore: fingerprints, inventory and every check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, ValidationError

from drtests.errors import DRError
from drtests.evidence.model import CheckRecord, FindingRecord
from drtests.metastore.checks import CheckContext, inventory, run_checks
from drtests.metastore.objects import definitions
from drtests.postgres import TableFingerprint, table_fingerprints
from drtests.results import CheckResult, Finding
from drtests.schema_fingerprint import SchemaFingerprint, compare_schema, schema_fingerprint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_FINDINGS_KEPT = 20


@dataclass(frozen=True)
class Baseline:
    fingerprints: dict[str, TableFingerprint]
    tables_per_database: dict[str, int]
    schema: SchemaFingerprint
    #: each served object's definition (see ``objects.definitions``)
    objects: dict[str, str] = field(default_factory=dict)


def take_baseline(conn: psycopg.Connection[Any]) -> Baseline:
    return Baseline(
        table_fingerprints(conn), inventory(conn), schema_fingerprint(conn), definitions(conn)
    )


class _FingerprintFile(BaseModel):
    rows: int
    sha256: str


class BaselineFile(BaseModel):
    """A baseline kept on disk, so that count, content and schema checks can run outside a
    game day (``drtests metastore baseline`` writes it, ``check --baseline`` reads it)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["drtests-metastore-baseline/1"] = "drtests-metastore-baseline/1"
    taken_at: datetime
    source: str
    tables_per_database: dict[str, int]
    fingerprints: dict[str, _FingerprintFile]
    schema_facts: list[tuple[str, str, str]]
    objects: dict[str, str] = {}

    @classmethod
    def of(cls, baseline: Baseline, source: str) -> BaselineFile:
        return cls(
            taken_at=datetime.now(UTC).replace(microsecond=0),
            source=source,
            tables_per_database=baseline.tables_per_database,
            fingerprints={
                t: _FingerprintFile(rows=f.rows, sha256=f.sha256)
                for t, f in baseline.fingerprints.items()
            },
            schema_facts=[(k, s, d) for (k, s), d in sorted(baseline.schema.facts.items())],
            objects=baseline.objects,
        )

    def baseline(self) -> Baseline:
        return Baseline(
            {t: TableFingerprint(f.rows, f.sha256) for t, f in self.fingerprints.items()},
            dict(self.tables_per_database),
            SchemaFingerprint({(k, s): d for k, s, d in self.schema_facts}),
            dict(self.objects),
        )


def save_baseline(baseline: Baseline, source: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BaselineFile.of(baseline, source).model_dump_json(indent=1) + "\n")


def load_baseline(path: Path) -> tuple[Baseline, BaselineFile]:
    """A baseline file, or one line saying why it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DRError(f"baseline {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DRError(
            f"baseline {path}: not a drtests metastore baseline (not UTF-8 text)"
        ) from None
    try:
        stored = BaselineFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise DRError(
            f"baseline {path}: not a drtests metastore baseline ({where}: {first['msg']})"
        ) from None
    return stored.baseline(), stored


def check_records(results: list[CheckResult]) -> list[CheckRecord]:
    return [
        CheckRecord(
            name=r.name,
            ok=r.ok,
            error=r.error,
            findings_total=len(r.findings),
            findings=[
                FindingRecord(severity=f.severity, subject=f.subject, detail=f.detail)
                for f in r.findings[:MAX_FINDINGS_KEPT]
            ],
        )
        for r in results
    ]


def detect(
    conn: psycopg.Connection[Any],
    baseline: Baseline,
    allow_list: tuple[str, ...],
    s3: S3Client | None,
) -> list[CheckResult]:
    """The runbook's detection queries (corrected) and schematool's checks."""
    return run_checks(
        CheckContext(conn, allow_list, baseline.tables_per_database, s3, baseline.objects or None)
    )


def compare_fingerprints(conn: psycopg.Connection[Any], baseline: Baseline) -> CheckResult:
    """Per-table row counts and content hashes against the baseline."""
    result = CheckResult("fingerprints_match_baseline", "row counts and content equal the baseline")
    try:
        with conn.transaction():
            now = table_fingerprints(conn)
    except psycopg.Error as exc:
        result.error = f"cannot run: {str(exc).strip().splitlines()[0]}"
        return result
    for table in sorted(set(baseline.fingerprints) | set(now)):
        want, got = baseline.fingerprints.get(table), now.get(table)
        if want == got:
            continue
        if got is None:
            detail = "table missing"
        elif want is None:
            detail = "table not in baseline"
        elif want.rows != got.rows:
            detail = f"{got.rows} rows, baseline {want.rows}"
        else:
            detail = f"content differs ({got.rows} rows)"
        result.findings.append(Finding(result.name, "error", table, detail))
    return result


def verify(
    conn: psycopg.Connection[Any],
    baseline: Baseline,
    allow_list: tuple[str, ...],
    s3: S3Client | None,
) -> list[CheckResult]:
    """The runbook's post-restore checks: every consistency check clean, S3 consistent,
    content and schema equal the baseline's."""
    return [
        *detect(conn, baseline, allow_list, s3),
        compare_fingerprints(conn, baseline),
        compare_schema(conn, baseline.schema),
    ]


PartitionKey = tuple[str, str, str, str | None]


def partition_inventory(conn: psycopg.Connection[Any]) -> set[PartitionKey]:
    """Every partition as (database, table, PART_NAME, location): what a repair must
    bring back, whatever ids the repair gives the rows."""
    rows = conn.execute(
        'SELECT d."NAME", t."TBL_NAME", p."PART_NAME", s."LOCATION" FROM "PARTITIONS" p '
        'JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        'LEFT JOIN "SDS" s ON s."SD_ID" = p."SD_ID"'
    ).fetchall()
    return {(str(a), str(b), str(c), d) for a, b, c, d in rows}


def compare_partitions(conn: psycopg.Connection[Any], expected: set[PartitionKey]) -> CheckResult:
    result = CheckResult("partitions_match_expected", "every expected partition, nothing more")
    try:
        with conn.transaction():
            actual = partition_inventory(conn)
    except psycopg.Error as exc:
        result.error = f"cannot run: {str(exc).strip().splitlines()[0]}"
        return result
    for db, table, name, _ in sorted(expected - actual, key=str):
        result.findings.append(Finding(result.name, "error", f"{db}.{table}/{name}", "missing"))
    for db, table, name, _ in sorted(actual - expected, key=str):
        result.findings.append(Finding(result.name, "error", f"{db}.{table}/{name}", "unexpected"))
    return result
