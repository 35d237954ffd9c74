"""The corrected detection checks: each fires on the damage it names, never on a clean or
legitimately unusual metastore (views, empty partitioned tables, `_`-prefixed S3 entries)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.metastore.checks import CHECKS, CheckContext, more_connections, run_checks
from drtests.metastore.verify import Baseline
from drtests.objectstore import split_uri
from drtests.results import CheckResult, failed


@pytest.fixture
def baseline(metastore: MetastoreUnderTest) -> Baseline:
    return metastore.baseline()


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_clean_metastore_has_no_finding(metastore: MetastoreUnderTest, baseline: Baseline) -> None:
    results = metastore.detect(baseline)
    assert not failed(results)
    assert all(not r.findings for r in results if r.name != "partitioned_tables_without_partitions")


def test_null_location_is_found_where_not_like_would_miss_it(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = NULL WHERE "SD_ID" = (SELECT t."SD_ID" FROM "TBLS" t '
            "WHERE \"TBL_NAME\" = 'events' LIMIT 1)"
        )
        seed_query_rows = conn.execute(
            'SELECT count(*) FROM "SDS" WHERE "LOCATION" NOT LIKE \'s3a://%\''
        ).fetchone()
    assert seed_query_rows == (0,), "the runbook's NOT LIKE misses NULL: this is why it changed"
    results = _by_name(metastore.detect(baseline))
    assert not results["invalid_storage_descriptors"].ok
    assert "events" in results["invalid_storage_descriptors"].findings[0].subject


def test_views_without_location_are_not_findings(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    with metastore.connect() as conn:
        row = conn.execute(
            'SELECT count(*) FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            'WHERE t."TBL_TYPE" = \'VIRTUAL_VIEW\' AND s."LOCATION" IS NULL'
        ).fetchone()
    assert row is not None and row[0] > 0
    assert not failed(metastore.detect(baseline))


def test_wrong_scheme_is_an_invalid_location(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "DBS" SET "DB_LOCATION_URI" = \'hdfs://nn:8020/warehouse/staging.db\' '
            "WHERE \"NAME\" = 'staging'"
        )
    results = _by_name(metastore.detect(baseline))
    assert [f.subject for f in results["invalid_locations"].findings] == ["database staging"]


def test_partition_directory_unknown_to_the_metastore_is_found_and_underscore_is_skipped(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    with metastore.connect() as conn:
        row = conn.execute(
            'SELECT s."LOCATION" FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            "WHERE t.\"TBL_NAME\" = 'events' LIMIT 1"
        ).fetchone()
    assert row is not None
    bucket, key = split_uri(row[0])
    metastore.s3.put_object(Bucket=bucket, Key=f"{key}/dt=2030-01-01/part-0.parquet", Body=b"x")
    metastore.s3.put_object(Bucket=bucket, Key=f"{key}/_temporary/0/part-0", Body=b"x")
    metastore.s3.put_object(Bucket=bucket, Key=f"{key}/.spark-staging/x", Body=b"x")
    try:
        results = _by_name(metastore.detect(baseline))
        subjects = [f.subject for f in results["s3_paths_registered"].findings]
        assert subjects == [f"s3a://{bucket}/{key}/dt=2030-01-01"]
    finally:
        for suffix in ("dt=2030-01-01/part-0.parquet", "_temporary/0/part-0", ".spark-staging/x"):
            metastore.s3.delete_object(Bucket=bucket, Key=f"{key}/{suffix}")


def test_more_than_one_version_row(metastore: MetastoreUnderTest, baseline: Baseline) -> None:
    with metastore.connect() as conn:
        conn.execute("INSERT INTO \"VERSION\" VALUES (2, '3.1.0', 'second row')")
    assert "version_row" in failed(metastore.detect(baseline))


def test_s3_unreachable_makes_the_s3_checks_fail_not_crash(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    from drtests.objectstore import S3Endpoint

    dead = S3Endpoint("dead", "http://127.0.0.1:9", "us-east-1", "k", "s").client()
    broken = MetastoreUnderTest(metastore.target, metastore.allow_list, dead)
    results = _by_name(broken.detect(baseline))
    assert results["s3_paths_exist"].error is not None
    assert results["s3_paths_exist"].error.startswith("cannot run")


def _partition_location(metastore: MetastoreUnderTest, table: str) -> tuple[int, str]:
    with metastore.connect() as conn:
        row = conn.execute(
            'SELECT s."SD_ID", s."LOCATION" FROM "PARTITIONS" p '
            'JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" JOIN "SDS" s ON s."SD_ID" = p."SD_ID" '
            'WHERE t."TBL_NAME" = %s ORDER BY p."PART_ID" LIMIT 1',
            (table,),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_partition_outside_its_table_directory_is_checked_where_it_is(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    """ALTER TABLE … ADD PARTITION … LOCATION elsewhere is legal: the partition's objects
    are looked for at its own location, found there, and missed when they are not."""
    sd_id, location = _partition_location(metastore, "events")
    bucket, key = split_uri(location)
    elsewhere = f"archive/events-moved/{key.rsplit('/', 1)[-1]}"
    metastore.s3.put_object(Bucket=bucket, Key=f"{elsewhere}/part-0.parquet", Body=b"PAR1")
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = %s WHERE "SD_ID" = %s',
            (f"s3a://{bucket}/{elsewhere}", sd_id),
        )
    try:
        results = _by_name(metastore.detect(baseline))
        assert not results["s3_paths_exist"].findings, results["s3_paths_exist"].findings
        metastore.s3.delete_object(Bucket=bucket, Key=f"{elsewhere}/part-0.parquet")
        missing = _by_name(metastore.detect(baseline))["s3_paths_exist"].findings
        assert [f.detail for f in missing] == [f"s3a://{bucket}/{elsewhere} missing"]
    finally:
        metastore.s3.delete_object(Bucket=bucket, Key=f"{elsewhere}/part-0.parquet")


def test_a_missing_bucket_is_one_finding_and_every_other_bucket_still_checked(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    sd_id, _location = _partition_location(metastore, "events")
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = %s WHERE "SD_ID" = %s',
            ("s3a://no-such-bucket-anywhere/events/dt=1", sd_id),
        )
    other_sd, other = _partition_location(metastore, "fact_table")
    bucket, _key = split_uri(other)
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = %s WHERE "SD_ID" = %s',
            (f"s3a://{bucket}/nowhere/dt=1", other_sd),
        )
    results = _by_name(metastore.detect(baseline))
    exist = results["s3_paths_exist"]
    assert exist.error is None, exist.error
    subjects = [f.subject for f in exist.findings]
    assert "s3a://no-such-bucket-anywhere" in subjects
    assert "bucket cannot be listed (NoSuchBucket): 1 locations" in "\n".join(
        f.detail for f in exist.findings
    )
    details = [f.detail for f in exist.findings]
    assert f"s3a://{bucket}/nowhere/dt=1 missing" in details, details
    assert results["s3_paths_registered"].error is None


def test_a_database_the_baseline_does_not_know_fails_the_count(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    """A hand-edited or stale baseline that lacks a database must not pass the count."""
    from dataclasses import replace

    known = dict(baseline.tables_per_database)
    dropped = sorted(known)[0]
    del known[dropped]
    results = _by_name(metastore.detect(replace(baseline, tables_per_database=known)))
    count = results["table_count_per_database"]
    assert not count.ok
    assert [f.subject for f in count.findings] == [dropped]
    assert "not in the baseline" in count.findings[0].detail


def test_a_key_name_hive_escapes_is_not_a_finding(metastore: MetastoreUnderTest) -> None:
    """Hive escapes a partition key's name in PART_NAME as it does a value (``a:b`` is
    ``a%3Ab``): a table whose key has such a name is not reported."""
    from drtests.metastore.partitions import make_part_name

    with metastore.connect() as conn:
        tbl_id = conn.execute(
            'SELECT "TBL_ID" FROM "PARTITION_KEYS" GROUP BY 1 HAVING count(*) = 1 LIMIT 1'
        ).fetchone()
        assert tbl_id is not None
        conn.execute(
            'UPDATE "PARTITION_KEYS" SET "PKEY_NAME" = \'a:b\' WHERE "TBL_ID" = %s', tbl_id
        )
        for part_id, value in conn.execute(
            'SELECT p."PART_ID", v."PART_KEY_VAL" FROM "PARTITIONS" p JOIN "PARTITION_KEY_VALS" v '
            'USING ("PART_ID") WHERE p."TBL_ID" = %s',
            tbl_id,
        ).fetchall():
            conn.execute(
                'UPDATE "PARTITIONS" SET "PART_NAME" = %s WHERE "PART_ID" = %s',
                (make_part_name(["a:b"], [value]), part_id),
            )
        baseline = metastore.baseline()
    results = _by_name(metastore.detect(baseline))
    assert results["part_name_matches_key_vals"].findings == []


def test_two_partitions_swapping_storage_descriptors_are_named_by_their_table(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    """Each served with the other's location: nothing dangles and nothing is NULL, so only
    the baseline's partition digest of their table can tell, and it names the table."""
    with metastore.connect() as conn:
        rows = conn.execute(
            'SELECT p."PART_ID", p."SD_ID", d."NAME" || \'.\' || t."TBL_NAME" FROM "PARTITIONS" p '
            'JOIN "TBLS" t USING ("TBL_ID") JOIN "DBS" d USING ("DB_ID") ORDER BY 1 LIMIT 2'
        ).fetchall()
        (first, first_sd, table), (second, second_sd, _) = rows
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            'UPDATE "PARTITIONS" SET "SD_ID" = %s WHERE "PART_ID" = %s', (second_sd, first)
        )
        conn.execute(
            'UPDATE "PARTITIONS" SET "SD_ID" = %s WHERE "PART_ID" = %s', (first_sd, second)
        )
    found = _by_name(metastore.detect(baseline))["objects_match_baseline"].findings
    assert [f.subject for f in found] == [f"partitions of table {table}"], found
    assert "location" in found[0].detail


def test_a_key_value_beyond_the_tables_keys_is_found(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    """HMS serves a partition of a one-key table with two values when a second one is
    inserted; the name still agrees, so only the count of values can tell."""
    with metastore.connect() as conn:
        row = conn.execute(
            'SELECT "PART_ID" FROM "PARTITION_KEY_VALS" GROUP BY 1 HAVING count(*) = 1 LIMIT 1'
        ).fetchone()
        assert row is not None
        conn.execute('INSERT INTO "PARTITION_KEY_VALS" VALUES (%s, %s, 1)', (row[0], "extra"))
    found = _by_name(metastore.detect(baseline))["part_name_matches_key_vals"].findings
    assert [f.subject for f in found] == [f"PART_ID {row[0]}"]
    assert "no partition key for" in found[0].detail


def test_a_null_key_value_is_found(metastore: MetastoreUnderTest, baseline: Baseline) -> None:
    """HMS cannot list the partitions of a table one of whose key values is NULL, even
    where the name says the default partition."""
    with metastore.connect() as conn:
        row = conn.execute(
            'SELECT "PART_ID", "INTEGER_IDX" FROM "PARTITION_KEY_VALS" ORDER BY 1 LIMIT 1'
        ).fetchone()
        assert row is not None
        conn.execute(
            'UPDATE "PARTITION_KEY_VALS" SET "PART_KEY_VAL" = NULL '
            'WHERE "PART_ID" = %s AND "INTEGER_IDX" = %s',
            row,
        )
    found = _by_name(metastore.detect(baseline))["part_name_matches_key_vals"].findings
    assert any(f.subject == f"PART_ID {row[0]}" and "NULL" in f.detail for f in found), found


def _context(metastore: MetastoreUnderTest, baseline: Baseline, conn: Any) -> CheckContext:
    return CheckContext(
        conn, metastore.allow_list, baseline.tables_per_database, metastore.s3, baseline.objects
    )


def test_checks_on_two_connections_find_what_one_finds(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = \'hdfs://old/x\' WHERE "SD_ID" = '
            '(SELECT min("SD_ID") FROM "SDS" WHERE "LOCATION" IS NOT NULL)'
        )
    with metastore.connect() as conn:
        alone = run_checks(_context(metastore, baseline, conn), connections=1)
        shared = run_checks(_context(metastore, baseline, conn), connections=2)
    assert [r.name for r in shared] == [r.name for r in alone] == [c.name for c in CHECKS]
    assert shared == alone and failed(shared)


def test_uncommitted_damage_is_checked_on_the_callers_connection_alone(
    metastore: MetastoreUnderTest, baseline: Baseline
) -> None:
    """A caller inside a transaction sees what it has not committed; another connection
    would not, so the checks stay on the caller's."""
    with metastore.connect() as conn:
        with conn.transaction():
            conn.execute(
                'DELETE FROM "PARTITION_KEY_VALS" WHERE "PART_ID" = '
                '(SELECT min("PART_ID") FROM "PARTITION_KEY_VALS")'
            )
            found = _by_name(run_checks(_context(metastore, baseline, conn), connections=2))
            raise psycopg.Rollback()
        after = _by_name(run_checks(_context(metastore, baseline, conn), connections=2))
    assert not found["part_name_matches_key_vals"].ok
    assert after["part_name_matches_key_vals"].ok


def test_no_second_connection_while_the_callers_transaction_is_open(
    metastore: MetastoreUnderTest,
) -> None:
    with metastore.connect() as conn:
        with conn.transaction():
            assert more_connections(conn, 1) == []
        read_only = make_conninfo(
            conn.info.dsn,
            password=conn.info.password,
            options="-c default_transaction_read_only=on",
        )
    with psycopg.connect(read_only, autocommit=True) as caller:
        opened = more_connections(caller, 1)
        try:
            assert len(opened) == 1
            assert opened[0].info.dbname == caller.info.dbname
            # a dry run's read-only session stays read-only on the second connection
            row = opened[0].execute("SHOW default_transaction_read_only").fetchone()
            assert row == ("on",)
        finally:
            for extra in opened:
                extra.close()
