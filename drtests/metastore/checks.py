"""Named, set-based consistency checks of a Hive Metastore database.

These are the Hive Metastore runbook's detection and verification queries, corrected for the
real schema (quoted upper-case identifiers, LEFT JOINs, NULL-safe predicates), plus what
``schematool -validate`` checks and the S3 path consistency check in both directions. Each
check names its findings, like pgBackRest's ``verify`` names each bad file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import make_conninfo

from drtests.metastore.model import Model, Relation, read_model
from drtests.metastore.objects import definitions, identity, name_rows
from drtests.metastore.partitions import sql_escape_path_name
from drtests.metastore.schema import (
    REQUIRED_TABLES,
    SEQUENCE_CLASSES,
    SEQUENCE_PREFIX,
    SUPPORTED_VERSIONS,
    column_facts,
    reference_columns,
)
from drtests.objectstore import split_uri
from drtests.postgres import public_tables
from drtests.results import CheckNotRun, CheckResult, Finding

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class CheckContext:
    conn: psycopg.Connection[Any]
    location_allow_list: tuple[str, ...] = ("s3a://",)
    expected_tables: dict[str, int] | None = None
    s3: S3Client | None = None
    #: each object's definition at the baseline (``objects.definitions``)
    expected_objects: dict[str, str] | None = None


CheckFn = Callable[[CheckContext], list[Finding]]

NO_BASELINE = (
    "no baseline to compare with: record one with 'drtests metastore baseline --out FILE' "
    "and pass --baseline FILE"
)


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: CheckFn
    needs_s3: bool = False


TABLE_QUALIFIED = (
    "coalesce(d.\"NAME\", '<DB_ID ' || coalesce(t.\"DB_ID\"::text, 'NULL') || '>') "
    "|| '.' || t.\"TBL_NAME\""
)
NOT_VIEW = "coalesce(t.\"TBL_TYPE\", '') <> 'VIRTUAL_VIEW'"
# "db.table" for messages, naming the dangling id when a parent row is gone
QUALIFIED = (
    "coalesce(d.\"NAME\", '<DB_ID ' || coalesce(t.\"DB_ID\"::text, 'NULL') || '>') || '.' || "
    "coalesce(t.\"TBL_NAME\", '<TBL_ID ' || coalesce(p.\"TBL_ID\"::text, 'NULL') || '>')"
)


def _rows(ctx: CheckContext, query: str, params: Iterable[Any] | None = None) -> list[Any]:
    return ctx.conn.execute(query.encode(), params).fetchall()  # type: ignore[arg-type]


def metastore_accessible(ctx: CheckContext) -> list[Finding]:
    """SHOW DATABASES: the metastore answers and holds at least one database."""
    names = _rows(ctx, 'SELECT "NAME" FROM "DBS" ORDER BY 1')
    if not names:
        return [Finding("metastore_accessible", "error", "DBS", "no databases")]
    return []


def required_tables_present(ctx: CheckContext) -> list[Finding]:
    missing = _rows(
        ctx,
        "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(quote_ident(t)) IS NULL",
        (list(REQUIRED_TABLES),),
    )
    return [Finding("required_tables_present", "error", r[0], "table missing") for r in missing]


def version_row(ctx: CheckContext) -> list[Finding]:
    """schematool: exactly one VERSION row, of a schema version this suite understands."""
    rows = _rows(ctx, 'SELECT "SCHEMA_VERSION" FROM "VERSION"')
    if len(rows) != 1:
        return [Finding("version_row", "error", "VERSION", f"{len(rows)} rows, expected 1")]
    if rows[0][0] not in SUPPORTED_VERSIONS:
        return [Finding("version_row", "error", "VERSION", f"unsupported version {rows[0][0]}")]
    return []


def schema_matches_version(ctx: CheckContext) -> list[Finding]:
    """Every column of Hive's own DDL for the VERSION row's schema, with its type and
    nullability (a restore can bring every row back into a column of another type).
    Columns Hive's DDL does not have are not judged."""
    rows = _rows(ctx, 'SELECT "SCHEMA_VERSION" FROM "VERSION"')
    if len(rows) != 1:
        return []  # version_row names it
    version = str(rows[0][0])
    expected = reference_columns(version)
    if expected is None:
        return [
            Finding(
                "schema_matches_version",
                "info",
                "VERSION",
                f"no reference DDL for schema {version}: compared with the baseline only",
            )
        ]
    actual = column_facts(ctx.conn)
    present_tables = {key.split(".", 1)[0] for key in actual}
    findings: list[Finding] = []
    for table in sorted({key.split(".", 1)[0] for key in expected} - present_tables):
        findings.append(Finding("schema_matches_version", "error", table, "table missing"))
    for key, want in sorted(expected.items()):
        if key.split(".", 1)[0] not in present_tables:
            continue
        got = actual.get(key)
        if got != want:
            detail = "column missing" if got is None else f"{got}"
            findings.append(
                Finding(
                    "schema_matches_version",
                    "error",
                    f"column {key}",
                    f"{detail}; Hive {version}'s DDL has {want}",
                )
            )
    return findings


def table_count_per_database(ctx: CheckContext) -> list[Finding]:
    """Tables per database (LEFT JOIN, so empty databases show) against the expected counts."""
    counts = dict(
        _rows(
            ctx,
            'SELECT d."NAME", count(t."TBL_ID") FROM "DBS" d '
            'LEFT JOIN "TBLS" t ON t."DB_ID" = d."DB_ID" GROUP BY d."NAME"',
        )
    )
    if ctx.expected_tables is None:
        raise CheckNotRun(NO_BASELINE)
    findings = []
    for db_name, expected in sorted(ctx.expected_tables.items()):
        actual = counts.get(db_name)
        if actual is None:
            findings.append(
                Finding("table_count_per_database", "error", db_name, "database missing")
            )
        elif actual != expected:
            findings.append(
                Finding(
                    "table_count_per_database",
                    "error",
                    db_name,
                    f"{actual} tables, expected {expected}",
                )
            )
    for db_name in sorted(set(counts) - set(ctx.expected_tables)):
        findings.append(
            Finding(
                "table_count_per_database",
                "error",
                db_name,
                f"database not in the baseline ({counts[db_name]} tables)",
            )
        )
    return findings


def _fields(definition: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in definition.split(" | ") if "=" in p)


def objects_match_baseline(ctx: CheckContext) -> list[Finding]:
    """Each database, table, index and function defined as at the baseline (type, location,
    columns, partition keys, serde and its parameters, formats, bucketing, view text), and
    each table's partitions as a count and a digest, named: what counts cannot show."""
    if ctx.expected_objects is None:
        raise CheckNotRun(NO_BASELINE)
    now = definitions(ctx.conn)
    findings = []
    for name in sorted(set(ctx.expected_objects) | set(now)):
        want, got = ctx.expected_objects.get(name), now.get(name)
        if want == got:
            continue
        if got is None:
            detail = "missing"
        elif want is None:
            detail = "not in the baseline"
        else:
            was, now_ = _fields(want), _fields(got)
            if name.startswith("partitions of "):
                detail = (
                    f"{now_['count']} partitions, baseline {was['count']}"
                    if now_["count"] != was["count"]
                    else f"the same {now_['count']} partitions, but a name, location, format, "
                    "serde or column list differs from the baseline"
                )
            else:
                differs = [
                    f"{k} {v!r}, baseline {was.get(k)!r}"
                    for k, v in now_.items()
                    if was.get(k) != v
                ]
                detail = "; ".join(differs) or "definition differs"
        findings.append(Finding("objects_match_baseline", "error", name, detail))
    return findings


def partitioned_tables_without_partitions(ctx: CheckContext) -> list[Finding]:
    """Informational: a new partitioned table may legitimately have none."""
    rows = _rows(
        ctx,
        f'SELECT {TABLE_QUALIFIED} FROM "TBLS" t LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        'WHERE EXISTS (SELECT 1 FROM "PARTITION_KEYS" k WHERE k."TBL_ID" = t."TBL_ID") '
        'AND NOT EXISTS (SELECT 1 FROM "PARTITIONS" p WHERE p."TBL_ID" = t."TBL_ID") ORDER BY 1',
    )
    return [
        Finding("partitioned_tables_without_partitions", "info", r[0], "no partitions")
        for r in rows
    ]


def invalid_storage_descriptors(ctx: CheckContext) -> list[Finding]:
    """NULL or empty LOCATION on storage descriptors of non-view tables and of partitions."""
    rows = _rows(
        ctx,
        f'SELECT {TABLE_QUALIFIED}, s."SD_ID" FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
        f'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        f"WHERE {NOT_VIEW} AND coalesce(s.\"LOCATION\", '') = '' "
        "UNION ALL "
        f"SELECT {QUALIFIED} || '/' || coalesce(p.\"PART_NAME\", '?'), s.\"SD_ID\" "
        'FROM "PARTITIONS" p JOIN "SDS" s ON s."SD_ID" = p."SD_ID" '
        'LEFT JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        "WHERE coalesce(s.\"LOCATION\", '') = '' ORDER BY 1",
    )
    return [
        Finding("invalid_storage_descriptors", "error", str(r[0]), f"SD_ID {r[1]} has no location")
        for r in rows
    ]


def orphaned_partitions(ctx: CheckContext) -> list[Finding]:
    """Partitions whose table is missing or whose TBL_ID is NULL."""
    rows = _rows(
        ctx,
        'SELECT p."PART_ID", p."PART_NAME", p."TBL_ID" FROM "PARTITIONS" p '
        'LEFT JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" WHERE t."TBL_ID" IS NULL ORDER BY 1',
    )
    return [
        Finding(
            "orphaned_partitions",
            "error",
            f"PART_ID {r[0]} {r[1]}",
            f"table {r[2] if r[2] is not None else 'NULL'} does not exist",
        )
        for r in rows
    ]


def missing_storage_descriptors(ctx: CheckContext) -> list[Finding]:
    """Non-view tables and partitions whose SD_ID is NULL or points nowhere (schematool)."""
    _follow_indexes(ctx)
    rows = _rows(
        ctx,
        f'SELECT {TABLE_QUALIFIED}, t."SD_ID" FROM "TBLS" t '
        'LEFT JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
        f'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" WHERE s."SD_ID" IS NULL AND {NOT_VIEW} '
        "UNION ALL "
        "SELECT 'PART_ID ' || p.\"PART_ID\" || ' ' || coalesce(p.\"PART_NAME\", '?'), p.\"SD_ID\" "
        'FROM "PARTITIONS" p LEFT JOIN "SDS" s ON s."SD_ID" = p."SD_ID" WHERE s."SD_ID" IS NULL '
        "ORDER BY 1",
    )
    return [
        Finding(
            "missing_storage_descriptors",
            "error",
            str(r[0]),
            f"SD_ID {r[1] if r[1] is not None else 'NULL'} missing",
        )
        for r in rows
    ]


#: findings named per relation before the rest are counted in one line
NAMED_PER_RELATION = 20


def _model(ctx: CheckContext) -> Model:
    return read_model(ctx.conn)


def _follow_indexes(ctx: CheckContext) -> None:
    """For this check's transaction: anti-joins and groupings over a million rows read the
    schema's indexes in order (merge joins, sorted groups) instead of hashing every row;
    at 1M partitions that halves the time and the server's memory."""
    ctx.conn.execute("SET LOCAL enable_hashjoin = off")
    ctx.conn.execute("SET LOCAL enable_hashagg = off")


def _named_rows(
    ctx: CheckContext, model: Model, relation: Relation, where: str, check: str, detail: str
) -> list[Finding]:
    """Count the child rows of ``relation`` matching ``where``; name the objects holding the
    first few. ``detail`` may use ``{value}`` (the reference) and ``{count}``."""
    found = identity(model, relation.child)
    id_column = found[1] if found else relation.column
    rows = _rows(
        ctx,
        f'SELECT c."{id_column}", c."{relation.column}", count(*) OVER () '
        f'FROM "{relation.child}" c '
        f"WHERE {where} LIMIT {NAMED_PER_RELATION}",
    )
    if not rows:
        return []
    total = int(rows[0][2])
    names = name_rows(ctx.conn, model, found[0], found[2], [r[0] for r in rows]) if found else {}
    findings: list[Finding] = []
    for row_id, value in ((r[0], r[1]) for r in rows):
        for subject in names.get(row_id) or [f"{relation.child} row {row_id}"]:
            text = detail.format(value=value, count=total)
            finding = Finding(check, "error", subject, f"{relation.name}: {text}")
            if finding not in findings:
                findings.append(finding)
    if total > len(rows):
        findings.append(
            Finding(check, "error", relation.name, f"{total} rows in all, first {len(rows)} named")
        )
    return findings


def dangling_references(ctx: CheckContext) -> list[Finding]:
    """Rows referring to a row that does not exist, for every relation of the model (the
    database's foreign keys and Hive's own): what bypassed constraints or a half-applied
    restore leave. Each names the object a client of HMS loses."""
    model = _model(ctx)
    _follow_indexes(ctx)
    return _relation_findings(
        ctx,
        model,
        list(model.relations),
        lambda r: r.dangling,
        "dangling_references",
        lambda r: f"{r.column} {{value}} does not exist",
    )


def required_references(ctx: CheckContext) -> list[Finding]:
    """References HMS cannot serve an object without (package.jdo, ObjectStore) that are
    NULL: a table without database or storage descriptor, a storage descriptor without serde
    or column descriptor, a partition without table."""
    model = _model(ctx)
    return _relation_findings(
        ctx,
        model,
        [r for r in model.relations if r.required],
        lambda r: r.unset,
        "required_references",
        lambda r: f"{r.column} is NULL; HMS cannot serve it",
    )


def _relation_findings(
    ctx: CheckContext,
    model: Model,
    relations: list[Relation],
    condition: Callable[[Relation], str],
    check: str,
    detail: Callable[[Relation], str],
) -> list[Finding]:
    """Count the child rows of every relation that meet ``condition`` in one query; name
    the objects holding them for the relations that have any."""
    if not relations:
        return []
    counts = _rows(
        ctx,
        " UNION ALL ".join(
            f'SELECT {i}, count(*) FROM "{r.child}" c WHERE {condition(r)}'
            for i, r in enumerate(relations)
        ),
    )
    findings: list[Finding] = []
    for index, count in counts:
        if count:
            relation = relations[index]
            findings += _named_rows(
                ctx, model, relation, condition(relation), check, detail(relation)
            )
    return findings


def shared_owned_rows(ctx: CheckContext) -> list[Finding]:
    """A storage descriptor or serde that belongs to one owner (package.jdo
    ``dependent="true"``) used by several: each serves the other's location and columns,
    and dropping one deletes what the other still uses."""
    model = _model(ctx)
    _follow_indexes(ctx)
    findings: list[Finding] = []
    by_parent: dict[tuple[str, str], list[Relation]] = {}
    for relation in model.relations:
        if relation.owned:
            by_parent.setdefault((relation.parent, relation.parent_column), []).append(relation)
    for (parent, pcol), relations in sorted(by_parent.items()):
        uses = " UNION ALL ".join(
            f'SELECT c."{r.column}" AS id FROM "{r.child}" c WHERE c."{r.column}" IS NOT NULL'
            for r in relations
        )
        rows = _rows(
            ctx,
            f"SELECT id, count(*) FROM ({uses}) u GROUP BY id HAVING count(*) > 1 "
            f"ORDER BY id LIMIT {NAMED_PER_RELATION}",
        )
        if not rows:
            continue
        names = name_rows(ctx.conn, model, parent, pcol, [r[0] for r in rows])
        for value, count in rows:
            owners = names.get(value, [])
            for owner in owners:
                others = ", ".join(o for o in owners if o != owner)
                findings.append(
                    Finding(
                        "shared_owned_rows",
                        "error",
                        owner,
                        f"{parent}.{pcol} {value} also used by {others or f'{count - 1} more'}",
                    )
                )
    return findings


def objects_without_columns(ctx: CheckContext) -> list[Finding]:
    """Tables, partitions and indexes whose column descriptor holds no column: HMS serves
    them with ``cols=[]``."""
    model = _model(ctx)
    present = public_tables(ctx.conn)
    if not {"SDS", "CDS", "COLUMNS_V2"} <= present:
        return []
    rows = _rows(
        ctx,
        'SELECT s."SD_ID" FROM "SDS" s JOIN "CDS" c ON c."CD_ID" = s."CD_ID" '
        'WHERE NOT EXISTS (SELECT 1 FROM "COLUMNS_V2" v WHERE v."CD_ID" = s."CD_ID") '
        f"ORDER BY 1 LIMIT {NAMED_PER_RELATION}",
    )
    names = name_rows(ctx.conn, model, "SDS", "SD_ID", [r[0] for r in rows])
    return [
        Finding("objects_without_columns", "error", name, f"SD_ID {sd} has no columns")
        for (sd,) in rows
        for name in names.get(sd, [])
    ]


def unused_sql(conn: psycopg.Connection[Any], table: str, key: str) -> str:
    """The rows of ``table`` nothing in the model uses, as a query of their ``key``."""
    model = read_model(conn)
    unused = " AND ".join(
        f'NOT EXISTS (SELECT 1 FROM "{r.child}" o WHERE o."{r.column}" = x."{key}")'
        for r in model.users(table)
        if r.parent_column == key
    )
    return f'SELECT x."{key}" FROM "{table}" x WHERE {unused or "true"}'


def leaked_sds_sql(conn: psycopg.Connection[Any]) -> str:
    """The storage descriptors nothing uses, as a query."""
    return unused_sql(conn, "SDS", "SD_ID")


def _leaked(ctx: CheckContext, check: str, table: str, key: str, what: str) -> list[Finding]:
    _follow_indexes(ctx)
    leaked = unused_sql(ctx.conn, table, key)
    rows = _rows(ctx, f'SELECT count(*), min(x."{key}"), max(x."{key}") FROM ({leaked}) x')
    count, low, high = rows[0]
    if not count:
        return []
    return [Finding(check, "error", table, f"{count} {what} used by nothing ({key} {low}..{high})")]


def leaked_storage_descriptors(ctx: CheckContext) -> list[Finding]:
    """Storage descriptors no table, partition or index uses (by the model: the schema's
    foreign keys and Hive's): what a half-done drop leaves. Their locations are named: one
    may be the last record of a partition stored outside its table's directory."""
    findings = _leaked(ctx, "leaked_storage_descriptors", "SDS", "SD_ID", "storage descriptors")
    if findings:
        locations = [
            str(r[0])
            for r in _rows(
                ctx,
                f'SELECT s."LOCATION" FROM "SDS" s WHERE s."SD_ID" IN ({leaked_sds_sql(ctx.conn)}) '
                'AND s."LOCATION" IS NOT NULL ORDER BY 1 LIMIT 5',
            )
        ]
        if locations:
            first = findings[0]
            findings[0] = replace(
                first, detail=f"{first.detail}; locations: {', '.join(locations)}"
            )
    return findings


#: rows that exist only to be used: each must be used by something in the model
USED_ROWS = (
    ("CDS", "CD_ID", "column descriptors"),
    ("SERDES", "SERDE_ID", "serdes"),
    ("SKEWED_STRING_LIST", "STRING_LIST_ID", "skewed value lists"),
)


def unreferenced_rows(ctx: CheckContext) -> list[Finding]:
    """Column descriptors, serdes and skewed value lists nothing uses."""
    present = public_tables(ctx.conn)
    findings: list[Finding] = []
    for table, key, what in USED_ROWS:
        if table in present:
            findings += _leaked(ctx, "unreferenced_rows", table, key, what)
    return findings


def expected_part_name_sql(where: str = "true") -> str:
    """PART_NAME rebuilt from PARTITION_KEYS and PARTITION_KEY_VALS, escaped as Hive does
    (of the partitions ``p`` that ``where`` selects)."""
    escaped_value = sql_escape_path_name('v."PART_KEY_VAL"')
    return (
        'SELECT p."PART_ID", p."TBL_ID", p."PART_NAME", string_agg('
        + sql_escape_path_name('lower(k."PKEY_NAME")')
        + " || '=' || "
        + escaped_value
        + ', \'/\' ORDER BY k."INTEGER_IDX") FILTER (WHERE k."PKEY_NAME" IS NOT NULL) '
        'AS expected FROM "PARTITIONS" p '
        'LEFT JOIN "PARTITION_KEYS" k ON k."TBL_ID" = p."TBL_ID" '
        'LEFT JOIN "PARTITION_KEY_VALS" v '
        'ON v."PART_ID" = p."PART_ID" AND v."INTEGER_IDX" = k."INTEGER_IDX" '
        f"WHERE {where} "
        'GROUP BY p."PART_ID", p."TBL_ID", p."PART_NAME"'
    )


def mismatched_part_names_sql() -> str:
    """The PART_IDs whose PART_NAME does not say what their key values do, compared segment
    by segment (values are escaped, so a '/' never splits one): no name is built for the
    partitions that agree, which are nearly all of them."""
    escaped_value = sql_escape_path_name('v."PART_KEY_VAL"')
    # Hive escapes the key's name as well as its value (a key ``a:b`` is ``a%3Ab``)
    escaped_key = sql_escape_path_name('lower(k."PKEY_NAME")')
    segments = "length(p.\"PART_NAME\") - length(replace(p.\"PART_NAME\", '/', '')) + 1"
    return (
        'SELECT p."PART_ID" FROM "PARTITIONS" p LEFT JOIN '
        '(SELECT "TBL_ID", count(*) AS n FROM "PARTITION_KEYS" GROUP BY 1) c '
        'ON c."TBL_ID" = p."TBL_ID" '
        f"WHERE coalesce(c.n, 0) IS DISTINCT FROM {segments} "
        'UNION SELECT p."PART_ID" FROM "PARTITIONS" p '
        'JOIN "PARTITION_KEYS" k ON k."TBL_ID" = p."TBL_ID" '
        'LEFT JOIN "PARTITION_KEY_VALS" v '
        'ON v."PART_ID" = p."PART_ID" AND v."INTEGER_IDX" = k."INTEGER_IDX" '
        'WHERE split_part(p."PART_NAME", \'/\', k."INTEGER_IDX"::int + 1) '
        f"IS DISTINCT FROM {escaped_key} || '=' || {escaped_value}"
    )


def part_name_matches_key_vals(ctx: CheckContext) -> list[Finding]:
    """PART_NAME (escaped) must say what PARTITION_KEY_VALS (unescaped) hold, a partition
    holds no key value beyond its table's keys (HMS serves it as a value) and none that is
    NULL (HMS then fails to list the table's partitions)."""
    mismatched = f'p."PART_ID" IN ({mismatched_part_names_sql()})'
    rows = _rows(
        ctx,
        f'SELECT "PART_ID", "PART_NAME", expected FROM ({expected_part_name_sql(mismatched)}) x '
        'WHERE "PART_NAME" IS DISTINCT FROM expected ORDER BY 1',
    )
    # one pass over the key values: positions beyond the table's keys, and NULLs
    odd = _rows(
        ctx,
        'SELECT v."PART_ID", count(*) FILTER (WHERE k."TBL_ID" IS NULL), '
        'count(*) FILTER (WHERE v."PART_KEY_VAL" IS NULL) FROM "PARTITION_KEY_VALS" v '
        'JOIN "PARTITIONS" p ON p."PART_ID" = v."PART_ID" '
        'LEFT JOIN "PARTITION_KEYS" k ON k."TBL_ID" = p."TBL_ID" '
        'AND k."INTEGER_IDX" = v."INTEGER_IDX" '
        'WHERE k."TBL_ID" IS NULL OR v."PART_KEY_VAL" IS NULL GROUP BY 1 ORDER BY 1',
    )
    extra = [(part_id, beyond) for part_id, beyond, _ in odd if beyond]
    null = [(part_id, nulls) for part_id, _, nulls in odd if nulls]
    return (
        [
            Finding(
                "part_name_matches_key_vals",
                "error",
                f"PART_ID {r[0]}",
                f"PART_NAME {r[1]!r} but key values say {r[2]!r}",
            )
            for r in rows
        ]
        + [
            Finding(
                "part_name_matches_key_vals",
                "error",
                f"PART_ID {part_id}",
                f"{count} key values at positions the table has no partition key for",
            )
            for part_id, count in extra
        ]
        + [
            Finding(
                "part_name_matches_key_vals",
                "error",
                f"PART_ID {part_id}",
                f"{count} key values NULL: HMS cannot list its table's partitions",
            )
            for part_id, count in null
        ]
    )


def invalid_locations(ctx: CheckContext) -> list[Finding]:
    """Locations outside the scheme/bucket allow-list; empty database locations."""
    patterns = [p.replace("%", r"\%").replace("_", r"\_") + "%" for p in ctx.location_allow_list]
    rows = _rows(
        ctx,
        "SELECT kind, subject, loc FROM ("
        ' SELECT \'database\' AS kind, d."NAME" AS subject, d."DB_LOCATION_URI" AS loc FROM "DBS" d'
        f' UNION ALL SELECT \'table\', {TABLE_QUALIFIED}, s."LOCATION" FROM "TBLS" t'
        '  JOIN "SDS" s ON s."SD_ID" = t."SD_ID" LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"'
        f"  WHERE {NOT_VIEW}"
        f" UNION ALL SELECT 'partition', {QUALIFIED} || '/' || p.\"PART_NAME\", s.\"LOCATION\""
        '  FROM "PARTITIONS" p JOIN "SDS" s ON s."SD_ID" = p."SD_ID"'
        '  LEFT JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"'
        ") x WHERE (kind = 'database' AND coalesce(loc, '') = '')"
        " OR (coalesce(loc, '') <> '' AND NOT (loc LIKE ANY(%s))) ORDER BY 1, 2",
        (patterns,),
    )
    return [
        Finding(
            "invalid_locations",
            "error",
            f"{r[0]} {r[1]}",
            f"location {r[2]!r} not on allow-list {list(ctx.location_allow_list)}",
        )
        for r in rows
    ]


def sequence_counters(ctx: CheckContext) -> list[Finding]:
    """SEQUENCE_TABLE NEXT_VAL above MAX(id) per model class; NOTIFICATION_SEQUENCE too."""
    present = public_tables(ctx.conn)
    parts = [
        f'SELECT \'{SEQUENCE_PREFIX}{model}\' AS seq, (SELECT max("{column}") FROM "{table}") AS mx'
        for model, (table, column) in SEQUENCE_CLASSES.items()
        if table in present
    ]
    rows = _rows(
        ctx,
        f'SELECT m.seq, m.mx, s."NEXT_VAL" FROM ({" UNION ALL ".join(parts)}) m '
        'LEFT JOIN "SEQUENCE_TABLE" s ON s."SEQUENCE_NAME" = m.seq '
        'WHERE m.mx IS NOT NULL AND (s."NEXT_VAL" IS NULL OR s."NEXT_VAL" <= m.mx) ORDER BY 1',
    )
    findings = [
        Finding(
            "sequence_counters",
            "error",
            r[0].removeprefix(SEQUENCE_PREFIX),
            f"NEXT_VAL {r[2]} not above max id {r[1]}: next insert collides",
        )
        for r in rows
    ]
    if "NOTIFICATION_LOG" in present and "NOTIFICATION_SEQUENCE" in present:
        notif = _rows(
            ctx,
            'SELECT s."NEXT_EVENT_ID", (SELECT max("EVENT_ID") FROM "NOTIFICATION_LOG") '
            'FROM "NOTIFICATION_SEQUENCE" s',
        )
        for next_id, max_id in notif:
            if max_id is not None and next_id <= max_id:
                findings.append(
                    Finding(
                        "sequence_counters",
                        "error",
                        "NOTIFICATION_SEQUENCE",
                        f"NEXT_EVENT_ID {next_id} not above max {max_id}",
                    )
                )
    return findings


# ------------------------------------------------------------------ S3 consistency


def _norm(uri: str) -> tuple[str, str]:
    bucket, key = split_uri(uri)
    return bucket, key.strip("/")


@dataclass
class _Locations:
    databases: dict[str, tuple[str, str]]
    tables: dict[str, tuple[tuple[str, str], tuple[str, ...]]]
    partitions: dict[str, tuple[str, str]]
    #: partitions whose table is gone: their directories belong to no table
    orphaned: set[str]


def _locations(ctx: CheckContext) -> _Locations:
    def parse(uri: str | None) -> tuple[str, str] | None:
        try:
            return _norm(uri) if uri else None
        except ValueError:
            return None  # not S3: invalid_locations reports it

    dbs = {
        name: loc
        for name, uri in _rows(ctx, 'SELECT "NAME", "DB_LOCATION_URI" FROM "DBS"')
        if (loc := parse(uri))
    }
    tables: dict[str, tuple[tuple[str, str], tuple[str, ...]]] = {}
    for name, uri, keys in _rows(
        ctx,
        f'SELECT {TABLE_QUALIFIED}, s."LOCATION", '
        'coalesce((SELECT array_agg(k."PKEY_NAME" ORDER BY k."INTEGER_IDX") '
        'FROM "PARTITION_KEYS" k WHERE k."TBL_ID" = t."TBL_ID"), \'{}\') '
        'FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
        f'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" WHERE {NOT_VIEW}',
    ):
        if loc := parse(uri):
            tables[name] = (loc, tuple(keys))
    partitions: dict[str, tuple[str, str]] = {}
    orphaned: set[str] = set()
    for name, uri, has_table in _rows(
        ctx,
        f'SELECT {QUALIFIED} || \'/\' || p."PART_NAME", s."LOCATION", t."TBL_ID" IS NOT NULL '
        'FROM "PARTITIONS" p '
        'JOIN "SDS" s ON s."SD_ID" = p."SD_ID" LEFT JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" '
        'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"',
    ):
        if loc := parse(uri):
            partitions[name] = loc
            if not has_table:
                orphaned.add(name)
    return _Locations(dbs, tables, partitions, orphaned)


#: S3 answers for a bucket that cannot be listed, as opposed to an endpoint that is down
BUCKET_UNAVAILABLE = {"NoSuchBucket", "AccessDenied", "AllAccessDisabled", "403", "404"}


@dataclass
class Listing:
    """Directories found under the roots, and each bucket that could not be listed (why)."""

    directories: set[tuple[str, str]]
    unavailable: dict[str, str]


def _listed_directories(s3: S3Client, roots: Iterable[tuple[str, str]]) -> Listing:
    """Every 'directory' (key prefix ending at a '/') that holds an object under the roots.
    A bucket that does not exist or refuses the listing is recorded, and every other bucket
    is still listed; an endpoint that does not answer stops the check."""
    chosen: list[tuple[str, str]] = []
    covered: set[tuple[str, str]] = set()
    for bucket, key in sorted(set(roots), key=lambda r: (r[0], len(r[1]))):
        parts = key.split("/") if key else []
        ancestors = {(bucket, "")} | {(bucket, "/".join(parts[:n])) for n in range(1, len(parts))}
        if (bucket, key) not in covered and not ancestors & covered:
            chosen.append((bucket, key))
            covered.add((bucket, key))
    listing = Listing(set(), {})
    paginator = s3.get_paginator("list_objects_v2")
    for bucket, key in chosen:
        if bucket in listing.unavailable:
            continue
        prefix = f"{key}/" if key else ""
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    parts = obj["Key"].split("/")[:-1]
                    for depth in range(1, len(parts) + 1):
                        listing.directories.add((bucket, "/".join(parts[:depth])))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in BUCKET_UNAVAILABLE:
                raise
            listing.unavailable[bucket] = code
    return listing


def _unavailable_findings(
    check: str, listing: Listing, where: dict[str, tuple[str, str]]
) -> list[Finding]:
    """One finding per bucket that could not be listed, naming what lives there."""
    findings = []
    for bucket, code in sorted(listing.unavailable.items()):
        inside = sorted(name for name, (b, _k) in where.items() if b == bucket)
        sample = ", ".join(inside[:3]) + (", …" if len(inside) > 3 else "")
        findings.append(
            Finding(
                check,
                "error",
                f"s3a://{bucket}",
                f"bucket cannot be listed ({code}): {len(inside)} locations there not "
                f"checked ({sample})",
            )
        )
    return findings


def _require_s3(ctx: CheckContext) -> S3Client:
    if ctx.s3 is None:
        raise RuntimeError("no S3 endpoint configured")
    return ctx.s3


def s3_paths_exist(ctx: CheckContext) -> list[Finding]:
    """Metastore → S3: every table and partition location holds data."""
    s3 = _require_s3(ctx)
    locs = _locations(ctx)
    # partitions outside their table's directory (ALTER TABLE … ADD PARTITION … LOCATION)
    # are listed where they are; those inside are covered by their table's listing
    roots = [
        *locs.databases.values(),
        *(loc for loc, _ in locs.tables.values()),
        *locs.partitions.values(),
    ]
    listing = _listed_directories(s3, roots)
    present, skip = listing.directories, listing.unavailable
    findings = [
        Finding("s3_paths_exist", "error", f"table {name}", f"s3a://{b}/{k} is empty or missing")
        for name, ((b, k), _) in sorted(locs.tables.items())
        if (b, k) not in present and b not in skip
    ]
    findings += [
        Finding("s3_paths_exist", "error", f"partition {name}", f"s3a://{b}/{k} missing")
        for name, (b, k) in sorted(locs.partitions.items())
        if (b, k) not in present and b not in skip
    ]
    where = {f"table {n}": loc for n, (loc, _) in locs.tables.items()}
    where.update({f"partition {n}": loc for n, loc in locs.partitions.items()})
    return findings + _unavailable_findings("s3_paths_exist", listing, where)


def s3_paths_registered(ctx: CheckContext) -> list[Finding]:
    """S3 → metastore: table directories under database locations and partition directories
    under table locations that the metastore does not know (names starting ``_``/``.`` skipped).
    """
    s3 = _require_s3(ctx)
    locs = _locations(ctx)
    table_locs = {loc for loc, _ in locs.tables.values()}
    # under the warehouse root (the default database's location) live the other databases'
    # directories, as Hive lays them out; partitions added with their own LOCATION may live
    # anywhere
    owned = (
        table_locs
        | set(locs.databases.values())
        | {loc for name, loc in locs.partitions.items() if name not in locs.orphaned}
    )
    listing = _listed_directories(s3, [*locs.databases.values(), *table_locs])
    present = listing.directories
    where = {f"database {n}": loc for n, loc in locs.databases.items()}
    where.update({f"table {n}": loc for n, (loc, _) in locs.tables.items()})
    findings = _unavailable_findings("s3_paths_registered", listing, where)
    for db_name, (bucket, db_key) in sorted(locs.databases.items()):
        depth = db_key.count("/") + 1 if db_key else 0
        for b, k in sorted(present):
            if (
                b != bucket
                or k.count("/") != depth
                or not k.startswith(f"{db_key}/" if db_key else "")
            ):
                continue
            leaf = k.rsplit("/", 1)[-1]
            if leaf.startswith(("_", ".")) or "=" in leaf or (b, k) in owned:
                continue
            if any(ok.startswith(f"{k}/") for ob, ok in owned if ob == b) or any(
                k.startswith(f"{tk}/") for tb, tk in table_locs if tb == b
            ):
                continue
            findings.append(
                Finding(
                    "s3_paths_registered",
                    "error",
                    f"s3a://{b}/{k}",
                    f"directory under database {db_name} belongs to no table",
                )
            )
    registered = set(locs.partitions.values())
    for name, ((bucket, tkey), keys) in sorted(locs.tables.items()):
        if not keys:
            continue
        depth = tkey.count("/") + len(keys)
        for b, k in sorted(present):
            if b != bucket or k.count("/") != depth or not k.startswith(tkey + "/"):
                continue
            segments = k[len(tkey) + 1 :].split("/")
            if any(s.startswith(("_", ".")) for s in segments):
                continue
            if [s.partition("=")[0] for s in segments] != list(keys):
                continue
            if (b, k) not in registered:
                findings.append(
                    Finding(
                        "s3_paths_registered",
                        "error",
                        f"s3a://{b}/{k}",
                        f"partition directory of {name} not in the metastore",
                    )
                )
    return findings


CHECKS: tuple[Check, ...] = (
    Check("metastore_accessible", "SHOW DATABASES answers", metastore_accessible),
    Check("required_tables_present", "schema tables present", required_tables_present),
    Check("version_row", "one VERSION row of a supported version", version_row),
    Check(
        "schema_matches_version",
        "column types and nullability as Hive's DDL for the schema version",
        schema_matches_version,
    ),
    Check("table_count_per_database", "tables per database as expected", table_count_per_database),
    Check(
        "objects_match_baseline",
        "databases, tables, indexes, functions defined as at the baseline",
        objects_match_baseline,
    ),
    Check(
        "partitioned_tables_without_partitions",
        "partitioned tables with no partitions (info)",
        partitioned_tables_without_partitions,
    ),
    Check(
        "invalid_storage_descriptors",
        "storage descriptors with NULL/empty location",
        invalid_storage_descriptors,
    ),
    Check("orphaned_partitions", "partitions without a table", orphaned_partitions),
    Check(
        "missing_storage_descriptors",
        "tables/partitions without storage descriptor",
        missing_storage_descriptors,
    ),
    Check("dangling_references", "rows referencing deleted parents", dangling_references),
    Check(
        "required_references",
        "references HMS needs to serve an object are set",
        required_references,
    ),
    Check(
        "shared_owned_rows",
        "storage descriptors and serdes used by one owner each",
        shared_owned_rows,
    ),
    Check("objects_without_columns", "tables and partitions with columns", objects_without_columns),
    Check(
        "leaked_storage_descriptors",
        "storage descriptors used by nothing",
        leaked_storage_descriptors,
    ),
    Check(
        "unreferenced_rows", "column descriptors and serdes used by something", unreferenced_rows
    ),
    Check(
        "part_name_matches_key_vals",
        "PART_NAME agrees with the key values",
        part_name_matches_key_vals,
    ),
    Check("invalid_locations", "locations outside the allow-list", invalid_locations),
    Check("sequence_counters", "id sequences above max ids", sequence_counters),
    Check("s3_paths_exist", "metastore locations exist in S3", s3_paths_exist, needs_s3=True),
    Check(
        "s3_paths_registered",
        "S3 directories known to the metastore",
        s3_paths_registered,
        needs_s3=True,
    ),
)


def run_check_on(ctx: CheckContext, check: Check) -> CheckResult:
    """One check in its own transaction; a check that cannot run (schema gone, S3 down) is
    a failed check, not a crashed run."""
    result = CheckResult(check.name, check.description)
    if check.needs_s3 and ctx.s3 is None:
        result.error = "skipped: no S3 endpoint"
        return result
    try:
        with ctx.conn.transaction():
            result.findings = check.run(ctx)
    except CheckNotRun as exc:
        result.not_run = str(exc)
    except psycopg.Error as exc:
        result.error = f"cannot run: {str(exc).strip().splitlines()[0]}"
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        result.error = f"cannot run: {exc}"
    except Exception as exc:  # a check must report, never take the run down
        result.error = f"check failed internally: {type(exc).__name__}: {exc}"
    return result


def run_checks(
    ctx: CheckContext, checks: Iterable[Check] = CHECKS, connections: int = 2
) -> list[CheckResult]:
    """Every check, in order. They run on up to ``connections`` connections at once, as
    ``pg_dump -j`` does, so that the server's cores share the work; on the caller's
    connection alone when another cannot be opened, or when the caller's connection holds
    an open transaction (another connection would not see what it has not committed)."""
    checks = list(checks)
    extra = more_connections(ctx.conn, min(connections, len(checks)) - 1)
    if not extra:
        return [run_check_on(ctx, check) for check in checks]
    results: dict[int, CheckResult] = {}
    queue = iter(enumerate(checks))
    lock = threading.Lock()

    def work(conn: psycopg.Connection[Any]) -> None:
        mine = replace(ctx, conn=conn)
        while True:
            with lock:
                index, check = next(queue, (-1, None))
            if check is None:
                return
            results[index] = run_check_on(mine, check)

    try:
        with ThreadPoolExecutor(max_workers=len(extra)) as pool:
            done = [pool.submit(work, conn) for conn in extra]
            work(ctx.conn)
            for future in done:
                future.result()
    finally:
        for conn in extra:
            conn.close()
    return [results[i] for i in range(len(checks))]


def more_connections(conn: psycopg.Connection[Any], count: int) -> list[psycopg.Connection[Any]]:
    """``count`` more connections like ``conn`` (same server, user, options), or none:
    none either while ``conn`` is inside a transaction."""
    if count < 1 or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return []
    conninfo = make_conninfo(conn.info.dsn, password=conn.info.password or None)
    opened: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(count):
            opened.append(psycopg.connect(conninfo, autocommit=conn.autocommit, connect_timeout=5))
    except psycopg.Error:
        for extra in opened:
            extra.close()
        return []
    return opened


def inventory(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Tables per database: the expectation that table_count_per_database compares against."""
    rows = conn.execute(
        'SELECT d."NAME", count(t."TBL_ID") FROM "DBS" d '
        'LEFT JOIN "TBLS" t ON t."DB_ID" = d."DB_ID" GROUP BY d."NAME"'
    ).fetchall()
    return {str(name): int(count) for name, count in rows}
