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


def copy_matches_source(
    copy: dict[str, int], source: dict[str, int], max_loss: float
) -> CheckResult:
    """Every source table is in the copy, none with more than ``max_loss`` of its rows
    missing. A copy with more rows than the source is not a finding: rows are deleted."""
    result = CheckResult(
        "copy_matches_source",
        f"the source's tables restored, each within {max_loss:.0%} of its rows",
    )
    for table in sorted(source):
        want, got = source[table], copy.get(table)
        if got is None:
            result.findings.append(
                Finding(result.name, "error", table, "table missing from the backup")
            )
        elif want and (want - got) / want > max_loss:
            result.findings.append(
                Finding(
                    result.name,
                    "error",
                    table,
                    f"{got} rows of the source's {want} ({(want - got) / want:.0%} lost; "
                    f"at most {max_loss:.0%} allowed)",
                )
            )
    return result


def metastore_matches_source(
    copy: dict[str, int], source: dict[str, int], max_loss: float
) -> CheckResult:
    """Per Hive database: its tables in the copy against the source's (a backup that lost
    one database's tables names that database, not a row count of ``TBLS``)."""
    result = CheckResult(
        "databases_match_source", "every Hive database of the source with its tables"
    )
    for database in sorted(source):
        want, got = source[database], copy.get(database)
        if got is None:
            result.findings.append(
                Finding(result.name, "error", database, "database missing from the backup")
            )
        elif want and (want - got) / want > max_loss:
            result.findings.append(
                Finding(
                    result.name, "error", database, f"{got} of the source's {want} tables restored"
                )
            )
    return result
