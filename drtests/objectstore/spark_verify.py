"""verify-data-integrity on Spark: the same check as :func:`integrity.take_inventory` +
:func:`integrity.compare`, spread over executors, for lakes one machine cannot read in a
night.

The driver reads the S3 Inventory manifest (or takes a key list), the executors read its
data files, partition the keys, and decide each object with the same
:func:`integrity.object_state` the single-process path uses (stored checksum first, bytes
only when S3 holds none); the expected manifest is joined by key and each difference made
by the same :func:`integrity.problem_for`. Findings are written as Parquet, which the suite
reads back into the same check result: the two paths cannot drift apart.

Executors only read from S3: their clients refuse every other operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drtests.objectstore.core import iter_objects
from drtests.objectstore.integrity import (
    IntegrityProblem,
    Inventory,
    ObjectState,
    object_state,
    problem_for,
    with_evidence,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FINDINGS_SCHEMA = "kind string, key string, detail string, evidence string"


@dataclass(frozen=True)
class S3Access:
    """What an executor needs to build its own client: no gate, no secrets in the plan
    (credentials come from the executor's environment when not given)."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None = None
    secret_access_key: str | None = None


class ReadOnlyViolation(RuntimeError):
    pass


def _refuse_writes(model: Any, **_kwargs: Any) -> None:
    from drtests.objectstore.core import READ_OPERATIONS

    if not model.name.startswith(READ_OPERATIONS):
        raise ReadOnlyViolation(f"the verification only reads; {model.name} refused")


def read_only_client(access: S3Access) -> Any:
    """The suite's own S3 client (its retries, timeouts, path-style addressing), with every
    operation but reads refused."""
    from drtests.objectstore import S3Endpoint

    endpoint = S3Endpoint(
        "verify", access.endpoint_url, access.region, access.access_key_id, access.secret_access_key
    )
    client = endpoint.client()
    client.meta.events.register("before-parameter-build.s3", _refuse_writes)
    return client


def _states(access: S3Access, bucket: str, prefix: str, known: dict[str, dict[str, Any]]) -> Any:
    """The executor side: one client per partition, one HeadObject per key (bytes only
    when S3 holds no deciding checksum)."""

    def run(keys: Iterable[Any]) -> Iterator[tuple[str, str]]:
        client = read_only_client(access)
        for row in keys:
            key = row if isinstance(row, str) else row[0]
            relative = key[len(prefix) :]
            previous = known.get(relative)
            state = object_state(
                client,
                bucket,
                key,
                relative,
                ObjectState.from_json(previous) if previous else None,
            )
            if state is not None:  # gone since the inventory: missing, as when listed
                yield relative, json.dumps(state.to_json())

    return run


def _findings(partition: Iterable[Any]) -> Iterator[tuple[str, str, str, str]]:
    for key, (want, got) in partition:
        expected = ObjectState.from_json(json.loads(want)) if want else None
        actual = ObjectState.from_json(json.loads(got)) if got else None
        problem = problem_for(key, expected, actual)
        if problem is not None:
            problem = with_evidence(problem, actual)
            yield problem.kind, problem.key, problem.detail, problem.evidence


def verify_on_spark(
    spark: SparkSession,
    access: S3Access,
    bucket: str,
    prefix: str,
    expected: Inventory,
    out: str,
    *,
    inventory_files: list[dict[str, Any]] | None = None,
    inventory: tuple[str, str, tuple[str, ...]] | None = None,
    partitions: int = 8,
) -> str:
    """Run the verification; findings go to ``out`` (a Parquet folder) and its path is
    returned. The keys come from the inventory's data files read by the executors
    (``inventory``: its bucket, format and schema; ``inventory_files``: the manifest's
    ``files``), or from a listing by the driver."""
    sc = spark.sparkContext
    known = {k: v.to_json() for k, v in expected.items()}
    known_b = sc.broadcast(known)
    if inventory is not None and inventory_files is not None:
        rows = sc.parallelize(inventory_files, max(1, len(inventory_files))).flatMap(
            _inventory_reader(access, inventory, prefix)
        )
    else:
        client = read_only_client(access)
        keys = [entry.key for entry in iter_objects(client, bucket, prefix)]
        rows = sc.parallelize(keys, partitions)
    states = rows.repartition(partitions).mapPartitions(
        lambda part: _states(access, bucket, prefix, known_b.value)(part)
    )
    wanted = sc.parallelize(
        [(k, json.dumps(v)) for k, v in known.items()], max(1, min(partitions, len(known) or 1))
    )
    problems = wanted.fullOuterJoin(states, partitions).mapPartitions(_findings)
    frame = spark.createDataFrame(problems, schema=FINDINGS_SCHEMA)
    frame.coalesce(1).write.mode("overwrite").parquet(out)
    return out


def _inventory_reader(
    access: S3Access, inventory: tuple[str, str, tuple[str, ...]], prefix: str
) -> Any:
    from drtests.objectstore.s3inventory import InventoryManifest, read_inventory

    bucket, file_format, schema = inventory

    def read(entry: dict[str, Any]) -> Iterator[str]:
        manifest = InventoryManifest(
            bucket, "", "", datetime.now().astimezone(), file_format, schema, (entry,)
        )
        for row in read_inventory(read_only_client(access), manifest, prefix):
            yield row.key

    return read


def read_findings(out: str) -> list[IntegrityProblem]:
    """The Spark job's Parquet findings as the single-process check's problems, by key."""
    import pyarrow.parquet as pq

    return problems_of(pq.read_table(Path(out)).to_pylist())


def problems_of(rows: Iterable[dict[str, Any]]) -> list[IntegrityProblem]:
    """Rows of the findings Parquet (FINDINGS_SCHEMA) as problems, by key."""
    problems = [
        IntegrityProblem(row["kind"], row["key"], row["detail"] or "", row["evidence"] or "")
        for row in rows
    ]
    return sorted(problems, key=lambda p: p.key)
