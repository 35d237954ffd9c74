"""Committed metastore changes and what a restore lost of them.

HMS records every DDL in NOTIFICATION_LOG with its EVENT_TIME (DbNotificationListener); RPO
is measured from that (from partitions' CREATE_TIME where no listener is configured): the
newest change that survived the restore against the fault time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from drtests.results import RpoMeasurement


def has_notifications(conn: psycopg.Connection[Any]) -> bool:
    """Whether the metastore keeps a notification log (DbNotificationListener configured)."""
    row = conn.execute(
        "SELECT to_regclass('\"NOTIFICATION_LOG\"') IS NOT NULL "
        "AND to_regclass('\"NOTIFICATION_SEQUENCE\"') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class ChangeLog:
    """The committed changes as of one moment, each with its commit time: notification
    events by EVENT_ID, or on a metastore without a notification log, partitions by
    ``db.table/PART_NAME`` and CREATE_TIME (names, not ids, survive a repair)."""

    events: dict[int | str, int]

    @classmethod
    def read(cls, conn: psycopg.Connection[Any]) -> ChangeLog:
        if has_notifications(conn):
            rows = conn.execute('SELECT "EVENT_ID", "EVENT_TIME" FROM "NOTIFICATION_LOG"')
            return cls({int(r[0]): int(r[1]) for r in rows.fetchall()})
        rows = conn.execute(
            'SELECT d."NAME" || \'.\' || t."TBL_NAME" || \'/\' || p."PART_NAME", p."CREATE_TIME" '
            'FROM "PARTITIONS" p JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" '
            'JOIN "DBS" d ON d."DB_ID" = t."DB_ID"'
        )
        return cls({str(r[0]): int(r[1]) for r in rows.fetchall()})


def measure_rpo(
    before_fault: ChangeLog, after_restore: ChangeLog, fault_time: float
) -> RpoMeasurement:
    """RPO achieved = fault time - commit time of the newest change that survived, or 0 when
    nothing committed before the fault was lost."""
    lost = set(before_fault.events) - set(after_restore.events)
    surviving = [t for e, t in before_fault.events.items() if e in after_restore.events]
    last = max(surviving) if surviving else None
    if not lost:
        return RpoMeasurement(0, last, 0.0)
    window = fault_time - last if last is not None else float("inf")
    return RpoMeasurement(len(lost), last, max(0.0, window))


def table_rpo(
    conn: psycopg.Connection[Any],
    database: str,
    table: str,
    backup_last_event: int,
    fault_last_event: int,
    fault_time: float,
) -> RpoMeasurement:
    """RPO of a one-table restore. The notification log is not restored with the table, so
    the changes lost are that table's events after the backup's last event and up to the
    last event at the incident (ids, not whole-second times, tell them apart); the newest
    change kept is its last event in the backup."""
    rows = conn.execute(
        'SELECT "EVENT_ID", "EVENT_TIME" FROM "NOTIFICATION_LOG" '
        'WHERE "DB_NAME" = %s AND "TBL_NAME" = %s AND "EVENT_ID" <= %s',
        (database, table, fault_last_event),
    ).fetchall()
    lost = [int(t) for e, t in rows if e > backup_last_event]
    kept = [int(t) for e, t in rows if e <= backup_last_event]
    last = max(kept) if kept else None
    if not lost:
        return RpoMeasurement(0, last, 0.0)
    return RpoMeasurement(len(lost), last, fault_time - last if last is not None else float("inf"))


def record_event(
    conn: psycopg.Connection[Any],
    kind: str,
    database: str,
    table: str | None,
    message: dict[str, Any],
) -> int:
    """Write a notification as HMS's DbNotificationListener does: next id from
    NOTIFICATION_SEQUENCE, one NOTIFICATION_LOG row. Returns the event id."""
    row = conn.execute(
        'UPDATE "NOTIFICATION_SEQUENCE" SET "NEXT_EVENT_ID" = "NEXT_EVENT_ID" + 1 '
        'RETURNING "NEXT_EVENT_ID" - 1'
    ).fetchone()
    if row is None:
        raise ValueError("NOTIFICATION_SEQUENCE has no row")
    event_id = int(row[0])
    conn.execute(
        'INSERT INTO "NOTIFICATION_LOG" ("NL_ID", "EVENT_ID", "EVENT_TIME", "EVENT_TYPE", '
        '"DB_NAME", "TBL_NAME", "MESSAGE", "MESSAGE_FORMAT") '
        'VALUES ((SELECT coalesce(max("NL_ID"), 0) + 1 FROM "NOTIFICATION_LOG"), '
        "%s, %s, %s, %s, %s, %s, 'json-0.2')",
        (event_id, int(time.time()), kind, database, table, json.dumps(message)),
    )
    return event_id


def commit_partition_stats_updates(
    conn: psycopg.Connection[Any], count: int, table: tuple[str, str] | None = None
) -> list[int]:
    """ALTER PARTITION … SET statistics, as a Spark job's ANALYZE would, with the
    notification events HMS writes. Metadata only: S3 stays consistent."""
    event_ids: list[int] = []
    for _ in range(count):
        with conn.transaction():
            row = conn.execute(
                'SELECT p."PART_ID", p."PART_NAME", t."TBL_NAME", d."NAME" FROM "PARTITIONS" p '
                'JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
                'WHERE %(db)s::text IS NULL OR (d."NAME" = %(db)s AND t."TBL_NAME" = %(t)s) '
                "ORDER BY random() LIMIT 1",
                {"db": table[0] if table else None, "t": table[1] if table else None},
            ).fetchone()
            if row is None:
                return event_ids
            part_id, part_name, table_name, database = row
            conn.execute(
                "INSERT INTO \"PARTITION_PARAMS\" VALUES (%s, 'numRows', %s) "
                'ON CONFLICT ("PART_ID", "PARAM_KEY") '
                'DO UPDATE SET "PARAM_VALUE" = EXCLUDED."PARAM_VALUE"',
                (part_id, str(int(time.time() * 1000) % 1_000_000)),
            )
            event_id = record_event(
                conn, "ALTER_PARTITION", database, table_name, {"partition": part_name}
            )
            event_ids.append(event_id)
    return event_ids
