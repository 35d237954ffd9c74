"""The restored copy against its live source, read-only: is the backup as young as the RPO
asks, and does it hold what the source holds (its tables, and their rows within the loss
a backup interval explains)? "The backup is 40 h old although the RPO is 1 h" and "the
backup lost 30 % of partitions" are findings here, not surprises during an incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from drtests.postgres import public_tables
from drtests.results import CheckResult, Finding

#: the newest change each component's database records, as seconds since the epoch
NEWEST_CHANGE = {
    "metastore": 'SELECT greatest((SELECT max("CREATE_TIME") FROM "TBLS"), '
    '(SELECT max("CREATE_TIME") FROM "PARTITIONS"))::float8',
    "airflow": "SELECT extract(epoch FROM max(greatest(queued_at, start_date, end_date)))::float8 "
    "FROM dag_run",
    "mlflow": "SELECT (max(greatest(start_time, end_time)) / 1000.0)::float8 FROM runs",
}


@dataclass(frozen=True)
class DataAge:
    """How old the restored data is: the backup's age, and the changes it lacks."""

    backup_age_s: float
    newest_in_copy: float | None
    newest_in_source: float | None

    @property
    def missing_changes_s(self) -> float | None:
        if self.newest_in_copy is None or self.newest_in_source is None:
            return None
        return max(0.0, self.newest_in_source - self.newest_in_copy)

    def describe(self) -> str:
        text = f"backup taken {timedelta(seconds=round(self.backup_age_s))} ago"
        missing = self.missing_changes_s
        if missing is not None:
            text += f"; the source's newest change is {timedelta(seconds=round(missing))} newer"
        return text


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact rows of every public table, in one statement."""
    tables = sorted(public_tables(conn))
    if not tables:
        return {}
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {}").format(sql.Literal(t), sql.Identifier(t))
        for t in tables
    )
    return {str(name): int(count) for name, count in conn.execute(query).fetchall()}


def newest_change(conn: psycopg.Connection[Any], component: str) -> float | None:
    query = NEWEST_CHANGE.get(component)
    if query is None:
        return None
    try:
        with conn.transaction():
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return float(row[0]) if row and row[0] is not None else None


def backup_within_rpo(taken_at: datetime, now: datetime, rpo_s: float, uri: str) -> CheckResult:
    result = CheckResult("backup_within_rpo", f"recovery point younger than the RPO ({rpo_s:.0f}s)")
    age = (now - taken_at).total_seconds()
    if age > rpo_s:
        result.findings.append(
            Finding(
                result.name,
                "error",
                uri,
                f"the backup is {timedelta(seconds=round(age))} old; the RPO allows "
                f"{timedelta(seconds=round(rpo_s))}",
            )
        )
    return result


def _within_loss(
    result: CheckResult,
    copy: dict[str, int],
    source: dict[str, int],
    max_loss: float,
    missing: str,
    lost: str,
) -> CheckResult:
    """Every name of ``source`` in ``copy`` with no more than ``max_loss`` of its count
    missing. A copy holding more than the source is not a finding: things are deleted."""
    for name in sorted(source):
        want, got = source[name], copy.get(name)
        if got is None:
            result.findings.append(Finding(result.name, "error", name, missing))
        elif want and (want - got) / want > max_loss:
            detail = lost.format(got=got, want=want, share=(want - got) / want, most=max_loss)
            result.findings.append(Finding(result.name, "error", name, detail))
    return result


def copy_matches_source(
    copy: dict[str, int], source: dict[str, int], max_loss: float
) -> CheckResult:
    """Every source table is in the copy, none with more than ``max_loss`` of its rows
    missing."""
    result = CheckResult(
        "copy_matches_source",
        f"the source's tables restored, each within {max_loss:.0%} of its rows",
    )
    return _within_loss(
        result,
        copy,
        source,
        max_loss,
        "table missing from the backup",
        "{got} rows of the source's {want} ({share:.0%} lost; at most {most:.0%} allowed)",
    )


def metastore_matches_source(
    copy: dict[str, int], source: dict[str, int], max_loss: float
) -> CheckResult:
    """Per Hive database: its tables in the copy against the source's (a backup that lost
    one database's tables names that database, not a row count of ``TBLS``)."""
    result = CheckResult(
        "databases_match_source", "every Hive database of the source with its tables"
    )
    return _within_loss(
        result,
        copy,
        source,
        max_loss,
        "database missing from the backup",
        "{got} of the source's {want} tables restored",
    )
