"""A database's schema as comparable facts: tables, columns with their types, collations,
nullability and defaults, constraints, indexes, sequences, views, triggers, rules, row
security policies and functions. Content fingerprints cannot see a restore that brought the
rows back into a column of another type, or with a trigger that swallows every insert;
this can."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from drtests.results import CheckResult, Finding, run_check

SCHEMA_CHECK = "schema_matches_baseline"

# each query yields (kind, subject, definition) for objects of one schema
_FACTS = (
    (
        "SELECT 'table', c.relname, c.relkind::text "
        "|| CASE WHEN c.relrowsecurity THEN ' row security' ELSE '' END FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm')"
    ),
    (
        "SELECT 'column', c.relname || '.' || a.attname, "
        "format_type(a.atttypid, a.atttypmod) "
        "|| CASE WHEN a.attcollation <> ty.typcollation "
        "THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END "
        "|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END "
        "|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type ty ON ty.oid = a.atttypid "
        "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    ),
    (
        "SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s "
        # NOT NULL is a constraint row from PostgreSQL 18 on; the column's facts carry it
        "AND k.contype <> 'n'"
    ),
    (
        "SELECT 'index', i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace "
        "WHERE n.nspname = %(schema)s"
    ),
    (
        "SELECT 'sequence', s.sequencename, "
        "s.data_type::text || ' increment ' || s.increment_by || ' min ' || s.min_value "
        "FROM pg_sequences s WHERE s.schemaname = %(schema)s"
    ),
    "SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = %(schema)s",
    (
        "SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid) "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(schema)s AND NOT t.tgisinternal"
    ),
    (
        "SELECT 'rule', tablename || '.' || rulename, definition FROM pg_rules "
        "WHERE schemaname = %(schema)s"
    ),
    (
        "SELECT 'policy', tablename || '.' || policyname, "
        "cmd || ' ' || array_to_string(roles, ',') || ' USING ' || coalesce(qual, '') "
        "|| ' CHECK ' || coalesce(with_check, '') FROM pg_policies WHERE schemaname = %(schema)s"
    ),
    (
        "SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', "
        "md5(pg_get_functiondef(p.oid)) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %(schema)s AND p.prokind IN ('f', 'p')"
    ),
)

#: kinds whose definition is an expression PostgreSQL deparses anew after a restore
_EXPRESSIONS = ("constraint", "index", "view", "trigger", "rule", "policy")


@dataclass(frozen=True)
class SchemaFingerprint:
    """``(kind, subject) → definition`` for every object of one schema."""

    facts: dict[tuple[str, str], str]

    def __len__(self) -> int:
        return len(self.facts)


def schema_fingerprint(
    conn: psycopg.Connection[Any], schema: str = "public", kinds: tuple[str, ...] | None = None
) -> SchemaFingerprint:
    """Every fact of ``schema``, or only those of ``kinds`` (``("column",)``, …)."""
    facts: dict[tuple[str, str], str] = {}
    for query in _FACTS:
        if kinds is not None and query.split("'", 2)[1] not in kinds:
            continue
        for kind, subject, definition in conn.execute(query, {"schema": schema}).fetchall():
            facts[(str(kind), str(subject))] = str(definition)
    return SchemaFingerprint(facts)


# a cast in a deparsed expression, with the type names PostgreSQL spells in several words
_CAST = re.compile(
    r"::(?:character varying|double precision|bit varying|"
    r"time(?:stamp)? with(?:out)? time zone|\"?[\w.]+\"?)(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*"
)


def _canonical(definition: str) -> str:
    """An expression as written, without casts, parentheses or spaces: PostgreSQL deparses
    the same CHECK (``x IN ('a', 'b')``) one way when it is created and another after a
    dump and restore re-parsed it; both mean the same."""
    parts = re.split(r"('(?:[^']|'')*')", definition)  # string literals at odd places
    return "".join(
        part if n % 2 else re.sub(r"[()\s]", "", _CAST.sub("", part))
        for n, part in enumerate(parts)
    )


def schema_differences(expected: SchemaFingerprint, actual: SchemaFingerprint) -> list[Finding]:
    """Every object missing, added or defined differently, named as ``kind subject``."""
    findings = []
    for key in sorted(set(expected.facts) | set(actual.facts)):
        want, got = expected.facts.get(key), actual.facts.get(key)
        if want == got:
            continue
        if (
            want is not None
            and got is not None
            and key[0] in _EXPRESSIONS
            and _canonical(want) == _canonical(got)
        ):
            continue
        subject = f"{key[0]} {key[1]}"
        if got is None:
            detail = f"missing (baseline: {want})"
        elif want is None:
            detail = f"not in the baseline: {got}"
        else:
            detail = f"{got}, baseline {want}"
        findings.append(Finding(SCHEMA_CHECK, "error", subject, detail))
    return findings


def compare_schema(conn: psycopg.Connection[Any], baseline: SchemaFingerprint) -> CheckResult:
    """The schema against the baseline's: a column whose type or nullability changed, a
    lost constraint or index, is a named finding."""

    def differences() -> list[Finding]:
        with conn.transaction():
            return schema_differences(baseline, schema_fingerprint(conn))

    return run_check(
        SCHEMA_CHECK,
        "tables, columns, constraints, indexes, views, triggers and the rest",
        differences,
        (psycopg.Error,),
    )
