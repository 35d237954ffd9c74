"""Option 3, Metadata Repair: MSCK REPAIR TABLE against S3, and the consistency checker's
repairs of what can be fixed safely. Everything else is reported, never guessed.

MSCK semantics (Hive): ADD registers partition directories found in S3 that the metastore
lacks; DROP removes partitions whose location is gone; SYNC does both. New partitions get a
storage descriptor copied from the table's, ids from SEQUENCE_TABLE (advanced under a row
lock, as DataNucleus does), and an ADD_PARTITION / DROP_PARTITION notification per batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from drtests.errors import RestoreFailed
from drtests.metastore.changes import has_notifications, record_event
from drtests.metastore.model import read_model
from drtests.metastore.partitions import walk_partitions
from drtests.metastore.schema import SEQUENCE_PREFIX
from drtests.objectstore import split_uri
from drtests.postgres import public_tables

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Mode = Literal["ADD", "DROP", "SYNC"]


@dataclass(frozen=True)
class TableInfo:
    tbl_id: int
    database: str
    name: str
    location: str
    keys: tuple[str, ...]
    sd: dict[str, Any]


@dataclass
class RepairPlan:
    table: str
    add: list[tuple[str, tuple[str | None, ...]]] = field(default_factory=list)
    drop: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    s3_requests: int = 0


@dataclass
class RepairReport:
    plan: RepairPlan
    dry_run: bool
    batches: int = 0

    def describe(self) -> str:
        verb = "would add" if self.dry_run else "added"
        dverb = "would drop" if self.dry_run else "dropped"
        return (
            f"{self.plan.table}: {verb} {len(self.plan.add)}, {dverb} {len(self.plan.drop)} "
            f"partitions in {self.batches} batches; {len(self.plan.skipped)} directories "
            f"skipped; {self.plan.s3_requests} S3 list requests"
        )


def load_table(conn: psycopg.Connection[Any], database: str, table: str) -> TableInfo:
    row = conn.execute(
        'SELECT t."TBL_ID", s."LOCATION", s."INPUT_FORMAT", s."OUTPUT_FORMAT", s."CD_ID", '
        's."IS_COMPRESSED", s."NUM_BUCKETS", se."SLIB", '
        '(SELECT array_agg(k."PKEY_NAME" ORDER BY k."INTEGER_IDX") FROM "PARTITION_KEYS" k '
        ' WHERE k."TBL_ID" = t."TBL_ID") '
        'FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
        'LEFT JOIN "SERDES" se ON se."SERDE_ID" = s."SERDE_ID" '
        'WHERE d."NAME" = %s AND t."TBL_NAME" = %s',
        (database, table),
    ).fetchone()
    if row is None:
        raise ValueError(f"no table {database}.{table} with a storage descriptor")
    if not row[1]:
        raise ValueError(f"{database}.{table} has no location: repair the table first (Option 2)")
    if not row[8]:
        raise ValueError(f"{database}.{table} is not partitioned")
    sd = {
        "input": row[2],
        "output": row[3],
        "cd_id": row[4],
        "compressed": row[5],
        "buckets": row[6],
        "slib": row[7],
    }
    return TableInfo(int(row[0]), database, table, str(row[1]).rstrip("/"), tuple(row[8]), sd)


def plan_msck(
    conn: psycopg.Connection[Any], s3: S3Client, table: TableInfo, mode: Mode
) -> RepairPlan:
    bucket, key = split_uri(table.location)
    walked = walk_partitions(s3, bucket, key, table.keys)
    existing = {
        str(name): (int(part_id), loc)
        for part_id, name, loc in conn.execute(
            'SELECT p."PART_ID", p."PART_NAME", s."LOCATION" FROM "PARTITIONS" p '
            'LEFT JOIN "SDS" s ON s."SD_ID" = p."SD_ID" WHERE p."TBL_ID" = %s',
            (table.tbl_id,),
        ).fetchall()
    }
    plan = RepairPlan(
        f"{table.database}.{table.name}", skipped=walked.skipped, s3_requests=walked.requests
    )
    if mode in ("ADD", "SYNC"):
        plan.add = [
            (name, values) for name, values in sorted(walked.found.items()) if name not in existing
        ]
    if mode in ("DROP", "SYNC"):
        for name, (part_id, location) in sorted(existing.items()):
            expected = f"{table.location}/{name}"
            inside = location is None or location.rstrip("/") == expected
            gone = name not in walked.found if inside else not _exists(s3, location, plan)
            if gone:
                plan.drop.append((part_id, name))
    return plan


def _exists(s3: S3Client, location: str, plan: RepairPlan) -> bool:
    """A partition with a location outside the table directory: look it up on its own."""
    try:
        bucket, key = split_uri(location)
    except ValueError:
        return True  # not S3: not MSCK's to judge
    plan.s3_requests += 1
    return (
        s3.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1).get(
            "KeyCount", 0
        )
        > 0
    )


def _allocate(conn: psycopg.Connection[Any], model: str, count: int) -> int:
    """Reserve ``count`` ids of a model class; returns the first."""
    name = SEQUENCE_PREFIX + model
    row = conn.execute(
        'SELECT "NEXT_VAL" FROM "SEQUENCE_TABLE" WHERE "SEQUENCE_NAME" = %s FOR UPDATE', (name,)
    ).fetchone()
    if row is None:
        raise ValueError(f"SEQUENCE_TABLE has no {name}: run the consistency repair first")
    conn.execute(
        'UPDATE "SEQUENCE_TABLE" SET "NEXT_VAL" = %s WHERE "SEQUENCE_NAME" = %s',
        (int(row[0]) + count, name),
    )
    return int(row[0])


def _notify(conn: psycopg.Connection[Any], kind: str, table: TableInfo, names: list[str]) -> None:
    """Notify as DbNotificationListener would, where the metastore has one (a Hive 2.3
    metastore without the listener has no notification tables)."""
    if has_notifications(conn):
        record_event(conn, kind, table.database, table.name, {"partitions": names})


def _add_batch(
    conn: psycopg.Connection[Any], table: TableInfo, batch: list[tuple[str, tuple[str | None, ...]]]
) -> None:
    n, now = len(batch), int(time.time())
    first_part, first_sd = (
        _allocate(conn, "MPartition", n),
        _allocate(conn, "MStorageDescriptor", n),
    )
    first_serde = _allocate(conn, "MSerDeInfo", n)
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "SERDES" ("SERDE_ID", "SLIB") VALUES (%s, %s)',
            [(first_serde + i, table.sd["slib"]) for i in range(n)],
        )
        cur.executemany(
            'INSERT INTO "SERDE_PARAMS" ("SERDE_ID", "PARAM_KEY", "PARAM_VALUE") '
            "VALUES (%s, 'serialization.format', '1')",
            [(first_serde + i,) for i in range(n)],
        )
        cur.executemany(
            'INSERT INTO "SDS" ("SD_ID", "INPUT_FORMAT", "IS_COMPRESSED", "LOCATION", '
            '"NUM_BUCKETS", '
            '"OUTPUT_FORMAT", "SERDE_ID", "CD_ID", "IS_STOREDASSUBDIRECTORIES") '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, false)",
            [
                (
                    first_sd + i,
                    table.sd["input"],
                    table.sd["compressed"],
                    f"{table.location}/{name}",
                    table.sd["buckets"],
                    table.sd["output"],
                    first_serde + i,
                    table.sd["cd_id"],
                )
                for i, (name, _) in enumerate(batch)
            ],
        )
        cur.executemany(
            'INSERT INTO "PARTITIONS" ("PART_ID", "CREATE_TIME", "LAST_ACCESS_TIME", "PART_NAME", '
            '"SD_ID", "TBL_ID") VALUES (%s, %s, 0, %s, %s, %s)',
            [
                (first_part + i, now, name, first_sd + i, table.tbl_id)
                for i, (name, _) in enumerate(batch)
            ],
        )
        cur.executemany(
            'INSERT INTO "PARTITION_KEY_VALS" ("PART_ID", "PART_KEY_VAL", "INTEGER_IDX") '
            "VALUES (%s, %s, %s)",
            [
                (first_part + i, value, idx)
                for i, (_, values) in enumerate(batch)
                for idx, value in enumerate(values)
            ],
        )
        cur.executemany(
            'INSERT INTO "PARTITION_PARAMS" ("PART_ID", "PARAM_KEY", "PARAM_VALUE") '
            "VALUES (%s, 'transient_lastDdlTime', %s)",
            [(first_part + i, str(now)) for i in range(n)],
        )
    _notify(conn, "ADD_PARTITION", table, [name for name, _ in batch])


def _drop_batch(
    conn: psycopg.Connection[Any], table: TableInfo, batch: list[tuple[int, str]]
) -> None:
    ids = [part_id for part_id, _ in batch]
    sds = [
        r[0]
        for r in conn.execute(
            'SELECT "SD_ID" FROM "PARTITIONS" WHERE "PART_ID" = ANY(%s) AND "SD_ID" IS NOT NULL',
            (ids,),
        ).fetchall()
    ]
    for child in ("PART_COL_STATS", "PARTITION_PARAMS", "PARTITION_KEY_VALS", "PARTITIONS"):
        conn.execute(f'DELETE FROM "{child}" WHERE "PART_ID" = ANY(%s)', (ids,))
    delete_storage_descriptors(conn, sds)
    _notify(conn, "DROP_PARTITION", table, [name for _, name in batch])


def delete_storage_descriptors(conn: psycopg.Connection[Any], sd_ids: list[int]) -> None:
    """Delete storage descriptors with everything that hangs on them, and the serdes that no
    other storage descriptor uses. Column descriptors are shared with the table: kept."""
    if not sd_ids:
        return
    serdes = [
        r[0]
        for r in conn.execute(
            'SELECT "SERDE_ID" FROM "SDS" WHERE "SD_ID" = ANY(%s) AND "SERDE_ID" IS NOT NULL',
            (sd_ids,),
        ).fetchall()
    ]
    # its parts, as the model says (params, bucketing, sort and skew columns, …), then it
    for part in read_model(conn).into("SDS"):
        if part.part_of:
            conn.execute(
                f'DELETE FROM "{part.child}" WHERE "{part.column}" = ANY(%s)'.encode(),
                (sd_ids,),
            )
    conn.execute('DELETE FROM "SDS" WHERE "SD_ID" = ANY(%s)', (sd_ids,))
    conn.execute(
        'DELETE FROM "SERDE_PARAMS" WHERE "SERDE_ID" = ANY(%(s)s) AND NOT EXISTS '
        '(SELECT 1 FROM "SDS" WHERE "SDS"."SERDE_ID" = "SERDE_PARAMS"."SERDE_ID")',
        {"s": serdes},
    )
    conn.execute(
        'DELETE FROM "SERDES" WHERE "SERDE_ID" = ANY(%(s)s) AND NOT EXISTS '
        '(SELECT 1 FROM "SDS" WHERE "SDS"."SERDE_ID" = "SERDES"."SERDE_ID")',
        {"s": serdes},
    )


def msck_repair(
    conn: psycopg.Connection[Any],
    s3: S3Client,
    database: str,
    table: str,
    mode: Mode = "ADD",
    *,
    dry_run: bool = False,
    batch_size: int = 1000,
) -> RepairReport:
    """MSCK REPAIR TABLE database.table {ADD|DROP|SYNC} PARTITIONS; each batch one transaction."""
    info = load_table(conn, database, table)
    plan = plan_msck(conn, s3, info, mode)
    report = RepairReport(plan, dry_run)
    if dry_run:
        report.batches = -(-len(plan.add) // batch_size) + -(-len(plan.drop) // batch_size)
        return report
    for start in range(0, len(plan.drop), batch_size):
        with conn.transaction():
            _drop_batch(conn, info, plan.drop[start : start + batch_size])
        report.batches += 1
    for start in range(0, len(plan.add), batch_size):
        with conn.transaction():
            _add_batch(conn, info, plan.add[start : start + batch_size])
        report.batches += 1
    return report


# ------------------------------------------------------------------ consistency repair


def _lost_references(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Per parent table, how many references point nowhere or, where HMS needs them, are
    NULL: while any is lost, a row nothing uses may be the lost one, and is kept."""
    lost: dict[str, int] = {}
    for relation in read_model(conn).relations:
        lost_if = f"{relation.unset} OR " if relation.required else ""
        row = conn.execute(
            f'SELECT count(*) FROM "{relation.child}" c '
            f"WHERE {lost_if}({relation.dangling})".encode()
        ).fetchone()
        if row and row[0]:
            lost[relation.parent] = lost.get(relation.parent, 0) + int(row[0])
    return lost


#: a table's or partition's storage descriptor, recognised by its location: exactly where
#: Hive puts it (the database's location and the table's name; the table's location and
#: the partition's name), not merely ending in the name
_SD_CANDIDATES = {
    "TBLS": (
        'SELECT o."TBL_ID", x."SD_ID" FROM "TBLS" o JOIN "DBS" d ON d."DB_ID" = o."DB_ID" '
        'JOIN ({leaked}) l ON true JOIN "SDS" x ON x."SD_ID" = l."SD_ID" '
        "WHERE rtrim(x.\"LOCATION\", '/') = "
        "rtrim(d.\"DB_LOCATION_URI\", '/') || '/' || lower(o.\"TBL_NAME\") "
        'AND (o."SD_ID" IS NULL OR NOT EXISTS (SELECT 1 FROM "SDS" s WHERE s."SD_ID" = o."SD_ID"))',
        "TBL_ID",
    ),
    "PARTITIONS": (
        'SELECT o."PART_ID", x."SD_ID" FROM "PARTITIONS" o '
        'JOIN "TBLS" t ON t."TBL_ID" = o."TBL_ID" '
        'JOIN "SDS" ts ON ts."SD_ID" = t."SD_ID" '
        'JOIN ({leaked}) l ON true JOIN "SDS" x ON x."SD_ID" = l."SD_ID" '
        "WHERE rtrim(x.\"LOCATION\", '/') = rtrim(ts.\"LOCATION\", '/') || '/' || o.\"PART_NAME\" "
        'AND (o."SD_ID" IS NULL OR NOT EXISTS (SELECT 1 FROM "SDS" s WHERE s."SD_ID" = o."SD_ID"))',
        "PART_ID",
    ),
}


def relink_lost_references(conn: psycopg.Connection[Any], report: ConsistencyRepair) -> None:
    """Give back what is provably theirs: a table or partition that lost its storage
    descriptor gets the one unused descriptor whose location is exactly its own (one
    candidate, claimed by no one else). A lost column descriptor is not guessed: after an
    ALTER TABLE a partition keeps its own, older columns, so the table's would be wrong."""
    from drtests.metastore.checks import leaked_sds_sql

    for owner, (query, key) in _SD_CANDIDATES.items():
        pairs = conn.execute(query.format(leaked=leaked_sds_sql(conn)).encode()).fetchall()
        owners: dict[Any, list[Any]] = {}
        claims: dict[Any, int] = {}
        for owner_id, sd_id in pairs:
            owners.setdefault(owner_id, []).append(sd_id)
            claims[sd_id] = claims.get(sd_id, 0) + 1
        for owner_id, sds in sorted(owners.items()):
            if len(sds) == 1 and claims[sds[0]] == 1:
                conn.execute(
                    f'UPDATE "{owner}" SET "SD_ID" = %s WHERE "{key}" = %s'.encode(),
                    (sds[0], owner_id),
                )
                report.relinked.append(f"{owner}.{key} {owner_id} → SD_ID {sds[0]}")


REPAIRABLE = ("sequence_counters", "leaked_storage_descriptors", "part_name_matches_key_vals")


@dataclass
class ConsistencyRepair:
    dry_run: bool
    sequences: list[str] = field(default_factory=list)
    leaked_sds: int = 0
    leaked_cds: int = 0
    leaked_serdes: int = 0
    part_names: int = 0
    relinked: list[str] = field(default_factory=list)
    #: locations of the leaked storage descriptors deleted
    deleted_locations: list[str] = field(default_factory=list)
    not_repaired: list[str] = field(default_factory=list)

    def describe(self) -> str:
        verb = "would repair" if self.dry_run else "repaired"
        fixed = (
            f"{verb}: {len(self.sequences)} sequences, {self.leaked_sds} leaked storage "
            f"descriptors ({self.leaked_serdes} serdes, {self.leaked_cds} column "
            f"descriptors), {self.part_names} partition names"
        )
        if self.deleted_locations:
            shown = ", ".join(self.deleted_locations[:5])
            extra = len(self.deleted_locations) - 5
            more = f" and {extra} more" if extra > 0 else ""
            fixed += f"; leaked storage descriptors' locations: {shown}{more}"
        if self.relinked:
            fixed += f", {len(self.relinked)} lost references re-linked ({self.relinked[0]}, …)"
        if self.not_repaired:
            fixed += "; not repaired: " + "; ".join(self.not_repaired)
        return fixed


def repair_consistency(
    conn: psycopg.Connection[Any], *, dry_run: bool = False
) -> ConsistencyRepair:
    """Fix what is safe to fix in one transaction (rolled back on a dry run); report the rest:
    missing rows, dangling ids and bad locations need a restore (Options 1 and 2), not a guess.
    A dry run executes the same statements in a transaction it rolls back; a repair that
    fails is one line, its transaction rolled back."""
    try:
        return _repair_consistency(conn, dry_run)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RestoreFailed(
            f"consistency repair rolled back, nothing was changed: {first[:300]}"
        ) from None


def _repair_consistency(conn: psycopg.Connection[Any], dry_run: bool) -> ConsistencyRepair:
    from drtests.metastore.checks import expected_part_name_sql, leaked_sds_sql, unused_sql
    from drtests.metastore.schema import SEQUENCE_CLASSES

    report = ConsistencyRepair(dry_run)
    with conn.transaction(force_rollback=dry_run):
        present = public_tables(conn)
        for model, (table, column) in SEQUENCE_CLASSES.items():
            if table not in present:
                continue
            name = SEQUENCE_PREFIX + model
            row = conn.execute(
                f'SELECT (SELECT max("{column}") FROM "{table}"), '
                '(SELECT "NEXT_VAL" FROM "SEQUENCE_TABLE" WHERE "SEQUENCE_NAME" = %s)',
                (name,),
            ).fetchone()
            assert row is not None
            high, next_val = row
            if high is not None and (next_val is None or next_val <= high):
                conn.execute(
                    'INSERT INTO "SEQUENCE_TABLE" VALUES (%s, %s) ON CONFLICT ("SEQUENCE_NAME") '
                    'DO UPDATE SET "NEXT_VAL" = EXCLUDED."NEXT_VAL"',
                    (name, high + 1),
                )
                report.sequences.append(f"{model} {next_val}→{high + 1}")
        if {"NOTIFICATION_LOG", "NOTIFICATION_SEQUENCE"} <= present:
            cur = conn.execute(
                'UPDATE "NOTIFICATION_SEQUENCE" SET "NEXT_EVENT_ID" = m + 1 FROM '
                '(SELECT max("EVENT_ID") AS m FROM "NOTIFICATION_LOG") x '
                'WHERE "NEXT_EVENT_ID" <= m'
            )
            if cur.rowcount:
                report.sequences.append("NOTIFICATION_SEQUENCE")

        relink_lost_references(conn, report)
        lost = _lost_references(conn)
        leaked = [r[0] for r in conn.execute(leaked_sds_sql(conn)).fetchall()]
        if leaked and lost:
            report.not_repaired.append(
                f"{len(leaked)} storage descriptors that nothing uses kept: "
                f"{sum(lost.values())} references are lost ({', '.join(sorted(lost))}) and "
                "one may be theirs (re-link it, or restore: Options 1 and 2)"
            )
        else:
            report.leaked_sds = len(leaked)
            # the record of what is deleted is kept in the report: a leaked descriptor may
            # be the last trace of a partition stored outside its table's directory
            report.deleted_locations = [
                str(r[0])
                for r in conn.execute(
                    'SELECT DISTINCT "LOCATION" FROM "SDS" WHERE "SD_ID" = ANY(%s) '
                    'AND "LOCATION" IS NOT NULL ORDER BY 1',
                    (leaked,),
                ).fetchall()
            ]
            delete_storage_descriptors(conn, leaked)
        unused_serdes = unused_sql(conn, "SERDES", "SERDE_ID")
        if lost:
            kept = conn.execute(f"SELECT count(*) FROM ({unused_serdes}) x").fetchone()
            if kept and kept[0]:
                report.not_repaired.append(
                    f"{kept[0]} serdes that nothing uses kept while references are lost"
                )
        else:
            conn.execute(f'DELETE FROM "SERDE_PARAMS" WHERE "SERDE_ID" IN ({unused_serdes})')
            report.leaked_serdes = conn.execute(
                f'DELETE FROM "SERDES" WHERE "SERDE_ID" IN ({unused_serdes})'
            ).rowcount
        # a column descriptor nothing uses may still be the only record of a table's
        # columns (its storage descriptor's link broken): only empty ones are deleted
        unused_cds = unused_sql(conn, "CDS", "CD_ID")
        report.leaked_cds = conn.execute(
            f'DELETE FROM "CDS" c WHERE c."CD_ID" IN ({unused_cds}) '
            'AND NOT EXISTS (SELECT 1 FROM "COLUMNS_V2" v WHERE v."CD_ID" = c."CD_ID")'
        ).rowcount
        kept = conn.execute(f"SELECT count(*) FROM ({unused_cds}) x").fetchone()
        if kept and kept[0]:
            report.not_repaired.append(
                f"{kept[0]} column descriptors that nothing uses hold columns: kept, the only "
                "record of those columns (re-link them to their storage descriptor)"
            )

        # the name is rebuilt from the key values only where the partition's location agrees
        # with them (two of three); where the location agrees with the name instead, the key
        # values are what is wrong, and where it agrees with neither, a person decides
        mismatched = conn.execute(
            f'SELECT x."PART_ID", x."PART_NAME", x.expected, s."LOCATION" '
            f"FROM ({expected_part_name_sql()}) x "
            'JOIN "PARTITIONS" p ON p."PART_ID" = x."PART_ID" '
            'LEFT JOIN "SDS" s ON s."SD_ID" = p."SD_ID" '
            'WHERE x."PART_NAME" IS DISTINCT FROM x.expected AND x.expected IS NOT NULL '
            'AND NOT EXISTS (SELECT 1 FROM "PARTITIONS" o WHERE o."TBL_ID" = x."TBL_ID" '
            'AND o."PART_NAME" = x.expected AND o."PART_ID" <> x."PART_ID")'
        ).fetchall()
        renames = [
            (expected, part_id)
            for part_id, _name, expected, location in mismatched
            if (location or "").rstrip("/").endswith(f"/{expected}")
        ]
        with conn.cursor() as cur:
            cur.executemany(
                'UPDATE "PARTITIONS" SET "PART_NAME" = %s WHERE "PART_ID" = %s', renames
            )
        report.part_names = len(renames)
        undecided = [
            (name, expected, location)
            for _part_id, name, expected, location in mismatched
            if not (location or "").rstrip("/").endswith(f"/{expected}")
        ]
        if undecided:
            name, expected, location = undecided[0]
            report.not_repaired.append(
                f"part_name_matches_key_vals: {len(undecided)} partitions whose location does "
                f"not confirm their key values, e.g. {name!r} (key values say {expected!r}, "
                f"location {location!r}): a person decides"
            )
        clashing = conn.execute(
            f"SELECT count(*) FROM ({expected_part_name_sql()}) x "
            'WHERE x."PART_NAME" IS DISTINCT FROM x.expected'
        ).fetchone()
        still = (clashing[0] if clashing else 0) - len(undecided)
        if still > 0:
            report.not_repaired.append(
                f"part_name_matches_key_vals: {still} partitions whose right name another "
                "partition already holds"
            )
    return report
