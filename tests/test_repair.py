"""MSCK REPAIR semantics and the consistency repair, against real PostgreSQL and S3."""

from __future__ import annotations

import pytest

from drtests.faults import HalfDroppedPartitions, OrphanPartitions, SequenceBehind
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.metastore.checks import expected_part_name_sql
from drtests.metastore.partitions import (
    escape_path_name,
    make_part_name,
    unescape_path_name,
    walk_partitions,
)
from drtests.metastore.repair import load_table, msck_repair, repair_consistency
from drtests.metastore.verify import partition_inventory
from drtests.objectstore import split_uri
from drtests.results import failed

TRICKY = ["a/b", "x:y", "100%", "it's", "#1", "tab\there", "", None, "plain-2026"]


@pytest.mark.parametrize("value", TRICKY)
def test_escaping_round_trip_and_default_partition(value: str | None) -> None:
    escaped = escape_path_name(value)
    if value in ("", None):
        assert escaped == "__HIVE_DEFAULT_PARTITION__"
    else:
        assert "/" not in escaped and ":" not in escaped
        assert unescape_path_name(escaped) == value
    assert make_part_name(["DT"], ["a:b"]) == "dt=a%3Ab"


def test_sql_escaping_agrees_with_hive_escaping(metastore: MetastoreUnderTest) -> None:
    with metastore.connect() as conn:
        rows = conn.execute(
            'SELECT v."PART_ID", v."INTEGER_IDX" FROM "PARTITION_KEY_VALS" v '
            "ORDER BY 1, 2 LIMIT %s",
            (len(TRICKY),),
        ).fetchall()
        for (part_id, idx), value in zip(rows, TRICKY, strict=False):
            conn.execute(
                'UPDATE "PARTITION_KEY_VALS" SET "PART_KEY_VAL" = %s '
                'WHERE "PART_ID" = %s AND "INTEGER_IDX" = %s',
                (value, part_id, idx),
            )
        computed = conn.execute(
            f'SELECT "PART_ID", expected FROM ({expected_part_name_sql()}) x '
            'WHERE "PART_ID" = ANY(%s)',
            ([r[0] for r in rows],),
        ).fetchall()
        for part_id, expected in computed:
            keys_vals = conn.execute(
                'SELECT k."PKEY_NAME", v."PART_KEY_VAL" FROM "PARTITIONS" p '
                'JOIN "PARTITION_KEYS" k ON k."TBL_ID" = p."TBL_ID" '
                'LEFT JOIN "PARTITION_KEY_VALS" v '
                'ON v."PART_ID" = p."PART_ID" AND v."INTEGER_IDX" = k."INTEGER_IDX" '
                'WHERE p."PART_ID" = %s ORDER BY k."INTEGER_IDX"',
                (part_id,),
            ).fetchall()
            assert expected == make_part_name([k for k, _ in keys_vals], [v for _, v in keys_vals])


def _table_location(metastore: MetastoreUnderTest) -> tuple[str, str]:
    with metastore.connect() as conn:
        return split_uri(load_table(conn, "analytics", "events").location)


def test_walk_skips_hidden_and_reports_foreign_directories(metastore: MetastoreUnderTest) -> None:
    bucket, key = _table_location(metastore)
    extra = [
        f"{key}/_temporary/x",
        f"{key}/.hive-staging/x",
        f"{key}/not-a-partition/x",
        f"{key}/dt=__HIVE_DEFAULT_PARTITION__/part-0",
        f"{key}/dt=a%3Ab/part-0",
    ]
    try:
        for k in extra:
            metastore.s3.put_object(Bucket=bucket, Key=k, Body=b"x")
        walked = walk_partitions(metastore.s3, bucket, key, ["dt"])
        assert walked.found["dt=__HIVE_DEFAULT_PARTITION__"] == (None,)
        assert walked.found["dt=a%3Ab"] == ("a:b",)
        assert [s.split(key)[1] for s in walked.skipped] == ["/not-a-partition/ (expected dt=…)"]
        assert walked.requests == 1  # one flat listing page for the whole table
    finally:
        for k in extra:
            metastore.s3.delete_object(Bucket=bucket, Key=k)


def test_msck_add_in_batches_and_dry_run(metastore: MetastoreUnderTest) -> None:
    with metastore.connect() as conn:
        expected = partition_inventory(conn)
    HalfDroppedPartitions("analytics", "events", count=7).inject(metastore.target)
    with metastore.connect() as conn:
        plan = msck_repair(
            conn, metastore.s3, "analytics", "events", "SYNC", dry_run=True, batch_size=3
        )
        assert (len(plan.plan.add), len(plan.plan.drop), plan.batches) == (7, 0, 3)
        assert partition_inventory(conn) != expected, "a dry run wrote"
        done = msck_repair(conn, metastore.s3, "analytics", "events", "ADD", batch_size=3)
        assert done.batches == 3
        assert partition_inventory(conn) == expected
    assert "sequence_counters" not in failed(metastore.detect(metastore.baseline()))


def test_consistency_repair_fixes_what_is_safe_and_leaves_the_rest(
    metastore: MetastoreUnderTest,
) -> None:
    SequenceBehind().inject(metastore.target)
    OrphanPartitions("staging", "fact_table").inject(metastore.target)
    with metastore.connect() as conn:
        dry = repair_consistency(conn, dry_run=True)
        assert dry.sequences and "sequence_counters" in failed(
            metastore.detect(metastore.baseline())
        )
        done = repair_consistency(conn)
    assert done.sequences == dry.sequences
    still = failed(metastore.detect(metastore.baseline()))
    assert "sequence_counters" not in still
    assert "orphaned_partitions" in still, "orphans need a restore, not a guess"


def test_an_index_storage_descriptor_is_not_leaked(metastore: MetastoreUnderTest) -> None:
    """A Hive index owns a storage descriptor like a table does: the check does not call it
    leaked, and the repair leaves it (deleting it broke the index's foreign key)."""
    with metastore.connect() as conn:
        tbl_id, sd_id = conn.execute(
            'SELECT "TBL_ID", "SD_ID" FROM "TBLS" WHERE "SD_ID" IS NOT NULL ORDER BY 1 LIMIT 1'
        ).fetchone() or (None, None)
        index_sd = conn.execute(
            'INSERT INTO "SDS" ("SD_ID", "CD_ID", "INPUT_FORMAT", "IS_COMPRESSED", '
            '"IS_STOREDASSUBDIRECTORIES", "LOCATION", "NUM_BUCKETS", "OUTPUT_FORMAT", '
            '"SERDE_ID") SELECT (SELECT max("SD_ID") + 1 FROM "SDS"), NULL, "INPUT_FORMAT", '
            'false, false, "LOCATION" || \'_idx\', -1, "OUTPUT_FORMAT", NULL FROM "SDS" '
            'WHERE "SD_ID" = %s RETURNING "SD_ID"',
            (sd_id,),
        ).fetchone()
        assert index_sd is not None
        conn.execute(
            'INSERT INTO "IDXS" ("INDEX_ID", "CREATE_TIME", "DEFERRED_REBUILD", "INDEX_NAME", '
            '"LAST_ACCESS_TIME", "ORIG_TBL_ID", "SD_ID") VALUES (1, 0, false, %s, 0, %s, %s)',
            ("by_dt", tbl_id, index_sd[0]),
        )
    results = {r.name: r for r in metastore.detect(metastore.baseline())}
    assert results["leaked_storage_descriptors"].findings == []
    with metastore.connect() as conn:
        report = repair_consistency(conn)
        assert report.leaked_sds == 0
        left = conn.execute('SELECT count(*) FROM "SDS" WHERE "SD_ID" = %s', index_sd).fetchone()
    assert left == (1,)


def test_a_repair_the_database_refuses_is_one_line_and_changes_nothing(
    metastore: MetastoreUnderTest,
) -> None:
    """The repair's statements fail against a constraint it did not expect: one line,
    everything rolled back."""
    from drtests.errors import RestoreFailed

    SequenceBehind().inject(metastore.target)
    with metastore.connect() as conn:
        conn.execute(
            'ALTER TABLE "SEQUENCE_TABLE" ADD CONSTRAINT frozen CHECK ("NEXT_VAL" < 0) NOT VALID'
        )
    before = metastore.baseline()
    with metastore.connect() as conn, pytest.raises(RestoreFailed, match="rolled back") as err:
        repair_consistency(conn)
    assert "\n" not in str(err.value) and "frozen" in str(err.value)
    assert metastore.baseline().fingerprints == before.fingerprints


def test_a_corrupted_key_value_is_reported_not_renamed_after(
    metastore: MetastoreUnderTest,
) -> None:
    """Name and location agree, the key value does not: the key value is what is wrong.
    Renaming the partition after it would hide the damage; the repair reports it and the
    check keeps failing."""
    with metastore.connect() as conn:
        part_id, name = conn.execute(
            'SELECT p."PART_ID", p."PART_NAME" FROM "PARTITIONS" p '
            'JOIN "PARTITION_KEY_VALS" v ON v."PART_ID" = p."PART_ID" '
            'WHERE v."INTEGER_IDX" = 0 ORDER BY 1 LIMIT 1'
        ).fetchone() or (None, None)
        conn.execute(
            'UPDATE "PARTITION_KEY_VALS" SET "PART_KEY_VAL" = \'1999-12-31\' '
            'WHERE "PART_ID" = %s AND "INTEGER_IDX" = 0',
            (part_id,),
        )
        report = repair_consistency(conn)
        after = conn.execute(
            'SELECT "PART_NAME" FROM "PARTITIONS" WHERE "PART_ID" = %s', (part_id,)
        ).fetchone()
    assert after == (name,), "the partition was renamed after a corrupted key value"
    assert report.part_names == 0
    assert any("a person decides" in line for line in report.not_repaired), report.not_repaired
    assert "part_name_matches_key_vals" in failed(metastore.detect(metastore.baseline()))


def test_the_only_record_of_a_tables_columns_is_not_deleted(
    metastore: MetastoreUnderTest,
) -> None:
    """A storage descriptor lost the link to its column descriptor: the descriptor, used by
    nothing now, still holds the table's columns. The repair keeps it and says so."""
    with metastore.connect() as conn:
        sd_id, cd_id = conn.execute(
            'SELECT s."SD_ID", s."CD_ID" FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            'WHERE s."CD_ID" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "SDS" o '
            'WHERE o."CD_ID" = s."CD_ID" AND o."SD_ID" <> s."SD_ID") ORDER BY 1 LIMIT 1'
        ).fetchone() or (None, None)
        assert cd_id is not None, "a table whose column descriptor no partition shares"
        columns = conn.execute(
            'SELECT count(*) FROM "COLUMNS_V2" WHERE "CD_ID" = %s', (cd_id,)
        ).fetchone()
        conn.execute('UPDATE "SDS" SET "CD_ID" = NULL WHERE "SD_ID" = %s', (sd_id,))
        report = repair_consistency(conn)
        left = conn.execute(
            'SELECT count(*) FROM "COLUMNS_V2" WHERE "CD_ID" = %s', (cd_id,)
        ).fetchone()
    assert columns and columns[0] > 0
    assert left == columns, "the only record of the table's columns was deleted"
    assert report.leaked_cds == 0
    assert any("hold columns: kept" in line for line in report.not_repaired)


def test_a_storage_descriptor_a_table_lost_is_relinked_by_its_location(
    metastore: MetastoreUnderTest,
) -> None:
    """A table's link to its storage descriptor is NULL: the descriptor, used by nothing
    now, is the only record of its location and columns. The one whose location is the
    table's own is linked back, not deleted as a leak."""
    with metastore.connect() as conn:
        tbl_id, sd_id = conn.execute(
            'SELECT t."TBL_ID", t."SD_ID" FROM "TBLS" t JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            'WHERE s."LOCATION" LIKE \'%/\' || lower(t."TBL_NAME") ORDER BY 1 LIMIT 1'
        ).fetchone() or (None, None)
        assert sd_id is not None
        conn.execute('UPDATE "TBLS" SET "SD_ID" = NULL WHERE "TBL_ID" = %s', (tbl_id,))
        dry = repair_consistency(conn, dry_run=True)
        still = conn.execute('SELECT "SD_ID" FROM "TBLS" WHERE "TBL_ID" = %s', (tbl_id,)).fetchone()
        report = repair_consistency(conn)
        linked = conn.execute(
            'SELECT "SD_ID" FROM "TBLS" WHERE "TBL_ID" = %s', (tbl_id,)
        ).fetchone()
    assert still == (None,), "the dry run changed the metastore"
    assert dry.relinked == report.relinked, "the dry run promised another repair"
    assert linked == (sd_id,)
    assert report.leaked_sds == 0
    assert failed(metastore.detect(metastore.baseline())) == []


def test_unused_storage_descriptors_are_kept_while_a_reference_is_lost(
    metastore: MetastoreUnderTest,
) -> None:
    """A partition points at a storage descriptor that does not exist, and a descriptor used
    by nothing has a location that is not the partition's: it may still be the lost one, so
    the repair neither links nor deletes it, and says why."""
    with metastore.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        part_id, sd_id = conn.execute(
            'SELECT "PART_ID", "SD_ID" FROM "PARTITIONS" ORDER BY 1 LIMIT 1'
        ).fetchone() or (None, None)
        conn.execute(
            'UPDATE "PARTITIONS" SET "SD_ID" = "SD_ID" + 1000000 WHERE "PART_ID" = %s', (part_id,)
        )
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute(
            """UPDATE "SDS" SET "LOCATION" = 's3a://elsewhere/x' WHERE "SD_ID" = %s""", (sd_id,)
        )
        report = repair_consistency(conn)
        kept = conn.execute('SELECT count(*) FROM "SDS" WHERE "SD_ID" = %s', (sd_id,)).fetchone()
    assert kept == (1,), "a storage descriptor that may be the lost one was deleted"
    assert report.leaked_sds == 0 and report.relinked == []
    assert any("kept" in line and "lost" in line for line in report.not_repaired), report


def test_a_partition_that_lost_its_columns_is_not_given_the_tables(
    metastore: MetastoreUnderTest,
) -> None:
    """After an ALTER TABLE a partition keeps its older columns: when its storage descriptor
    loses its column descriptor, the table's is not proof of what they were. The repair
    leaves it reported instead of hiding it."""
    with metastore.connect() as conn:
        sd_id = conn.execute('SELECT "SD_ID" FROM "PARTITIONS" ORDER BY 1 LIMIT 1').fetchone()
        assert sd_id is not None
        conn.execute('UPDATE "SDS" SET "CD_ID" = NULL WHERE "SD_ID" = %s', sd_id)
        report = repair_consistency(conn)
        after = conn.execute('SELECT "CD_ID" FROM "SDS" WHERE "SD_ID" = %s', sd_id).fetchone()
    assert after == (None,) and report.relinked == []
    assert "required_references" in failed(metastore.detect(metastore.baseline()))
