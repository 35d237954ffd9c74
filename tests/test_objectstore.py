"""S3 machinery against a real S3 API: integrity inventories, version restore plans, streamed
archives and their verification, replication, S3 faults and their ledger recovery."""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from drtests.config import Profile, S3Target, Safety
from drtests.environments import Environment
from drtests.errors import BackupNotFound, ChecksumMismatch, CorruptBackup
from drtests.faults import BucketTarget, DeleteObjects, OverwriteSameSize, PermanentLoss
from drtests.ledger import FaultLedger
from drtests.objectstore import S3Endpoint, ensure_bucket
from drtests.objectstore.archive import create_archive, restore_archive, verify_archive
from drtests.objectstore.integrity import compare, take_inventory
from drtests.objectstore.replication import Location, sync
from drtests.objectstore.versions import restore_as_of
from drtests.recovery import revert_leftovers
from drtests.safety import SafetyRails


@pytest.fixture
def bucket(dr_environment: Environment) -> Iterator[tuple[S3Endpoint, str]]:
    """A fresh versioned bucket of this test's own."""
    endpoint = dr_environment.s3_primary
    name = f"test-{uuid.uuid4().hex[:10]}"
    ensure_bucket(endpoint.client(), name)
    yield endpoint, name


def _put(endpoint: S3Endpoint, bucket: str, key: str, body: bytes) -> None:
    endpoint.client().put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")


def _seed(endpoint: S3Endpoint, bucket: str, n: int = 5) -> None:
    for i in range(n):
        _put(endpoint, bucket, f"results/job-123/part-{i}.parquet", f"row {i}".encode() * 10)


def test_inventory_hashes_multipart_objects_instead_of_trusting_the_etag(
    bucket: tuple[S3Endpoint, str], tmp_path: Path
) -> None:
    endpoint, name = bucket
    data = os.urandom(6 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    endpoint.client().upload_file(
        str(big),
        name,
        "big.bin",
        ExtraArgs={"ChecksumAlgorithm": "SHA256"},
        Config=TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
        ),
    )
    state = take_inventory(endpoint.client(), name, "")["big.bin"]
    head = endpoint.client().head_object(Bucket=name, Key="big.bin")
    assert "-" in head["ETag"], "a multipart ETag, which is no MD5"
    assert state.sha256 == hashlib.sha256(data).hexdigest()


def test_compare_names_every_kind_of_difference(bucket: tuple[S3Endpoint, str]) -> None:
    endpoint, name = bucket
    _seed(endpoint, name, 4)
    expected = take_inventory(endpoint.client(), name, "results/")
    client = endpoint.client()
    client.delete_object(Bucket=name, Key="results/job-123/part-0.parquet")
    _put(endpoint, name, "results/job-123/part-1.parquet", b"short")
    _put(endpoint, name, "results/job-123/part-2.parquet", b"ROW 2" * 10)
    _put(endpoint, name, "results/job-123/extra.parquet", b"x")
    problems = {
        str(p).split(" (")[0] for p in compare(expected, take_inventory(client, name, "results/"))
    }
    assert problems == {
        "missing: job-123/part-0.parquet",
        "size-mismatch: job-123/part-1.parquet",
        "checksum-mismatch: job-123/part-2.parquet",
        "extra: job-123/extra.parquet",
    }


def test_version_restore_plan_and_apply(bucket: tuple[S3Endpoint, str]) -> None:
    endpoint, name = bucket
    client = endpoint.client()
    _seed(endpoint, name, 3)
    expected = take_inventory(client, name, "results/")

    time.sleep(1.05 - time.time() % 1)
    as_of = datetime.fromtimestamp(int(time.time()), UTC) - timedelta(microseconds=1)
    client.delete_object(Bucket=name, Key="results/job-123/part-0.parquet")
    _put(endpoint, name, "results/job-123/part-1.parquet", b"overwritten")
    _put(endpoint, name, "results/job-123/new.parquet", b"created after T")

    plan = restore_as_of(
        client,
        name,
        "results/",
        as_of,
        dry_run=True,
        expected_keys=["results/job-123/gone.parquet"],
    )
    actions = {o.key.rsplit("/", 1)[-1]: o.action for o in plan.outcomes}
    assert actions == {
        "part-0.parquet": "undelete",
        "part-1.parquet": "copy-back",
        "part-2.parquet": "unchanged",
        "new.parquet": "remove",
        "gone.parquet": "unrecoverable",
    }
    assert compare(expected, take_inventory(client, name, "results/")), "a dry run wrote"

    report = restore_as_of(client, name, "results/", as_of)
    assert report.restored == 3
    assert "remove: results/job-123/new.parquet — created after the target time" in "\n".join(
        report.per_key()
    )
    assert compare(expected, take_inventory(client, name, "results/")) == []
    versions = client.list_object_versions(Bucket=name, Prefix="results/job-123/new.parquet")
    assert len(versions["Versions"]) == 1, "the removed key keeps its version"


# keys S3 accepts that URL handling, listing order and prefixes get wrong
HISTORY_KEYS = ("a.parquet", "dir/b c.csv", "ünï/%2F+x=y", "dir/b c.csv.1", "~tmp/.hidden")


def _random_history(
    endpoint: S3Endpoint, bucket: str, prefix: str, rng: random.Random, rounds: int
) -> list[tuple[datetime, dict[str, str]]]:
    """Puts, overwrites and deletes at random, one round per second; after each round the
    time T that ends it and the prefix's inventory at T. A key changes at most once a
    round: S3 lists versions and delete markers apart, with one-second times, so two
    changes of one key within a second have no order a client can read."""
    client = endpoint.client()
    states: list[tuple[datetime, dict[str, str]]] = []
    for _ in range(rounds):
        time.sleep(1.02 - time.time() % 1)  # a round of its own second
        second = int(time.time())
        for key in (prefix + k for k in rng.sample(HISTORY_KEYS, rng.randint(1, 4))):
            if rng.random() < 0.35:
                client.delete_object(Bucket=bucket, Key=key)
            else:
                _put(endpoint, bucket, key, rng.randbytes(rng.randint(0, 64)))
        assert int(time.time()) == second, "a round must fit in one second"
        inventory = take_inventory(client, bucket, prefix)
        at = datetime.fromtimestamp(second + 1, UTC) - timedelta(microseconds=1)
        states.append((at, {k: v.sha256 for k, v in inventory.items()}))
    return states


@pytest.mark.parametrize("seed", [3, 17, 29, 71])
def test_version_restore_reproduces_the_prefix_as_it_was(
    bucket: tuple[S3Endpoint, str], seed: int
) -> None:
    """Property: after random puts, overwrites and deletes, restoring to the end of a
    random round gives the prefix exactly as the inventory taken then: keys absent at T
    absent (created later, or deleted before T and written again), every other key with
    its bytes at T."""
    endpoint, name = bucket
    rng = random.Random(seed)
    prefix = f"hist-{seed}/"
    states = _random_history(endpoint, name, prefix, rng, rounds=3)
    as_of, expected = rng.choice(states[:-1])
    plan = restore_as_of(endpoint.client(), name, prefix, as_of, dry_run=True)
    report = restore_as_of(endpoint.client(), name, prefix, as_of)
    after = take_inventory(endpoint.client(), name, prefix)
    assert {k: v.sha256 for k, v in after.items()} == expected, report.per_key()
    removed = {o.key for o in report.outcomes if o.action == "remove"}
    assert removed == {o.key for o in plan.outcomes if o.action == "remove"}
    assert all(k.removeprefix(prefix) not in expected for k in removed)


def test_archive_round_trip_with_several_parts(bucket: tuple[S3Endpoint, str]) -> None:
    endpoint, name = bucket
    client = endpoint.client()
    _seed(endpoint, name, 3)
    _put(endpoint, name, "results/job-123/big.bin", os.urandom(9 * 1024 * 1024))
    expected = take_inventory(client, name, "results/")
    record = create_archive(client, name, "results/", name, "backups/a.tar.gz")
    assert record.objects == 4 and record.size > 8 * 1024 * 1024  # more than one part
    for key in expected:
        client.delete_object(Bucket=name, Key="results/" + key)
    assert restore_archive(client, name, "backups/a.tar.gz", name) == 4
    assert compare(expected, take_inventory(client, name, "results/")) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_damaged_archive_is_refused_before_writing(
    bucket: tuple[S3Endpoint, str], damage: str
) -> None:
    endpoint, name = bucket
    client = endpoint.client()
    _seed(endpoint, name, 3)
    create_archive(client, name, "results/", name, "backups/a.tar.gz")
    body = bytearray(client.get_object(Bucket=name, Key="backups/a.tar.gz")["Body"].read())
    if damage == "truncate":
        client.put_object(Bucket=name, Key="backups/a.tar.gz", Body=bytes(body[: len(body) // 2]))
    elif damage == "flip":
        body[len(body) // 2] ^= 1
        client.put_object(Bucket=name, Key="backups/a.tar.gz", Body=bytes(body))
    else:
        client.delete_object(Bucket=name, Key="backups/a.tar.gz.manifest.json")
    before = take_inventory(client, name, "restore-target/")
    expected_error = BackupNotFound if damage == "manifest" else (ChecksumMismatch, CorruptBackup)
    with pytest.raises(expected_error):
        verify_archive(client, name, "backups/a.tar.gz")
    with pytest.raises(expected_error):
        restore_archive(client, name, "backups/a.tar.gz", name)
    assert take_inventory(client, name, "restore-target/") == before


def test_replication_server_side_on_one_endpoint_streamed_across(
    bucket: tuple[S3Endpoint, str], dr_environment: Environment
) -> None:
    endpoint, name = bucket
    _seed(endpoint, name, 3)
    same = f"{name}-copy"
    ensure_bucket(endpoint.client(), same)
    local = sync(Location(endpoint, name, "results/"), Location(endpoint, same, "results/"))
    assert (local.copied, local.server_side) == (3, True)
    assert dr_environment.s3_dr is not None
    ensure_bucket(dr_environment.s3_dr.client(), same)
    remote = sync(
        Location(endpoint, name, "results/"), Location(dr_environment.s3_dr, same, "results/")
    )
    assert (remote.copied, remote.server_side) == (3, False)
    again = sync(
        Location(endpoint, name, "results/"), Location(dr_environment.s3_dr, same, "results/")
    )
    assert (again.copied, again.unchanged) == (0, 3)
    assert remote.max_lag_s is not None and remote.max_lag_s >= 0


@pytest.mark.parametrize("fault_kind", ["delete", "overwrite", "loss"])
def test_s3_faults_revert_exactly(
    bucket: tuple[S3Endpoint, str], tmp_path: Path, fault_kind: str
) -> None:
    endpoint, name = bucket
    _seed(endpoint, name, 3)
    client = endpoint.client()
    before = take_inventory(client, name, "results/")
    target = BucketTarget(endpoint, name, "local", tmp_path)
    fault = {
        "delete": DeleteObjects("results/"),
        "loss": PermanentLoss("results/"),
        "overwrite": OverwriteSameSize("results/job-123/part-1.parquet"),
    }[fault_kind]
    undo = fault.inject(target)
    assert compare(before, take_inventory(client, name, "results/"))
    fault.revert(target, undo)
    assert compare(before, take_inventory(client, name, "results/")) == []


def test_next_run_reverts_a_live_s3_leftover(
    bucket: tuple[S3Endpoint, str], tmp_path: Path
) -> None:
    endpoint, name = bucket
    _seed(endpoint, name, 3)
    client = endpoint.client()
    before = take_inventory(client, name, "results/")
    live = BucketTarget(endpoint, name, "live", tmp_path)
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    fault = PermanentLoss("results/")
    fid = ledger.begin(fault.kind, fault.describe(), live.describe(), fault.params())
    ledger.injected(fid, fault.inject(live))  # ... and the run is killed here
    profile = Profile(
        name="staging",
        state_dir=tmp_path,
        s3={
            "primary": S3Target(
                endpoint_url=endpoint.endpoint_url,
                access_key_id="k",  # type: ignore[arg-type]
                secret_access_key="s",
            )
        },  # type: ignore[arg-type]
        safety=Safety(allow_list=(f"{endpoint.describe()}/*",)),
    )
    lines = revert_leftovers(ledger, profile, SafetyRails(profile, allow_destructive=True))
    assert "reverted (re-uploaded 3" in lines[0]
    assert compare(before, take_inventory(client, name, "results/")) == []


def test_version_restore_of_a_location_leaves_its_siblings_alone(
    bucket: tuple[S3Endpoint, str],
) -> None:
    """A Hive location has no trailing slash: restoring ``wh/t1`` must not roll back
    ``wh/t10``, which shares its first characters."""
    endpoint, name = bucket
    _put(endpoint, name, "wh/t1/a.parquet", b"t1")
    _put(endpoint, name, "wh/t10/a.parquet", b"t10 old")
    time.sleep(1.02 - time.time() % 1)
    as_of = datetime.fromtimestamp(int(time.time()), UTC) - timedelta(microseconds=1)
    _put(endpoint, name, "wh/t10/a.parquet", b"t10 new")
    _put(endpoint, name, "wh/t1/late.parquet", b"late")
    report = restore_as_of(endpoint.client(), name, "wh/t1", as_of)
    assert {o.key: o.action for o in report.outcomes} == {
        "wh/t1/a.parquet": "unchanged",
        "wh/t1/late.parquet": "remove",
    }
    body = endpoint.client().get_object(Bucket=name, Key="wh/t10/a.parquet")["Body"].read()
    assert body == b"t10 new"
