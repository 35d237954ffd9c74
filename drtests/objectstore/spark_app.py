"""verify-data-integrity submitted to the cluster as a SparkApplication: the expected
manifest goes to the profile's work location, the Spark operator runs
:mod:`drtests.objectstore.spark_job` with the profile's image, executors and service
account, and the findings come back from the work location as the same problems the
single-process check names.

Writes go only to the work location, through the same client (and so the same safety
rails) as every other S3 write of the run; the bucket under verification is only read.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drtests.errors import DRError
from drtests.objectstore.core import split_uri
from drtests.objectstore.integrity import IntegrityProblem, Inventory, dump_inventory
from drtests.objectstore.s3inventory import InventoryManifest
from drtests.objectstore.spark_verify import problems_of, read_findings

if TYPE_CHECKING:
    from drtests.config import SparkVerificationSettings
    from drtests.objectstore import S3Endpoint
    from drtests.platform.kubernetes import KubernetesPlatform

API_VERSION = "sparkoperator.k8s.io/v1beta2"


def verification_application(
    settings: SparkVerificationSettings, name: str, namespace: str, job: dict[str, Any]
) -> dict[str, Any]:
    """The SparkApplication; credentials only by reference to the profile's Secret."""
    env_from = (
        [{"secretRef": {"name": settings.credentials_secret}}]
        if settings.credentials_secret
        else []
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "drtests"},
        },
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": settings.image,
            "mainApplicationFile": settings.main_application_file,
            "arguments": ["--job", json.dumps(job, sort_keys=True)],
            "sparkVersion": settings.spark_version,
            "restartPolicy": {"type": "Never"},
            "driver": {
                "cores": 1,
                "memory": settings.driver_memory,
                "serviceAccount": settings.service_account,
                "envFrom": env_from,
            },
            "executor": {
                "instances": settings.executors,
                "cores": settings.executor_cores,
                "memory": settings.executor_memory,
                "envFrom": env_from,
            },
        },
    }


def _put(endpoint: S3Endpoint, uri: str, body: bytes) -> None:
    if uri.startswith("file://"):
        path = Path(uri[len("file://") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return
    bucket, key = split_uri(uri)
    endpoint.client().put_object(Bucket=bucket, Key=key, Body=body)


def _findings(endpoint: S3Endpoint, uri: str) -> list[IntegrityProblem]:
    if uri.startswith("file://"):
        return read_findings(uri[len("file://") :])
    import pyarrow as pa
    import pyarrow.parquet as pq

    client = endpoint.client()
    bucket, prefix = split_uri(uri.rstrip("/") + "/")
    tables = [
        pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()))
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if o["Key"].endswith(".parquet")
    ]
    if not tables:
        raise DRError(f"{uri}: the verification job wrote no findings")
    return problems_of(pa.concat_tables(tables).to_pylist())


def verify_on_cluster(
    platform: KubernetesPlatform,
    settings: SparkVerificationSettings,
    endpoint: S3Endpoint,
    bucket: str,
    prefix: str,
    expected: Inventory,
    run_id: str,
    inventory: InventoryManifest | None = None,
) -> list[IntegrityProblem]:
    """Submit the verification, wait for it (the profile's timeout), read its findings."""
    work = f"{settings.work_uri.rstrip('/')}/{run_id}"
    expected_uri = f"{work}/expected.jsonl.gz"
    _put(endpoint, expected_uri, gzip.compress(dump_inventory(expected, f"s3://{bucket}/{prefix}")))
    job: dict[str, Any] = {
        "name": f"drtests-verify-{run_id}",
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url": endpoint.endpoint_url,
        "region": endpoint.region,
        "expected": expected_uri,
        "out": f"{work}/findings",
        "partitions": settings.partitions,
    }
    if inventory is not None:
        job["inventory"] = {
            "bucket": inventory.bucket,
            "format": inventory.file_format,
            "schema": list(inventory.schema),
            "files": list(inventory.files),
        }
    name = f"drtests-verify-{run_id}"[-50:].strip("-").lower()
    manifest = verification_application(settings, name, platform.namespace, job)
    result = platform.submit_test_job(manifest, settings.timeout_seconds)
    if result.state != "COMPLETED":
        tail = "\n".join(result.log.strip().splitlines()[-5:])
        raise DRError(f"the verification job {name} ended {result.state}: {tail}")
    return _findings(endpoint, job["out"])
