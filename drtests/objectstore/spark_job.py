"""The distributed verification's driver, as the Spark operator runs it: one JSON argument
says what to verify (bucket, prefix, the expected manifest's URI, the inventory, where the
findings go); credentials come from the environment (the profile's Secret), never from the
arguments, which the operator shows in the SparkApplication's status and logs.

    spark-submit spark_job.py --job '{"bucket": …}'

``DRTESTS_SPARK_MASTER`` sets the master where no spark-submit does (``local[2]``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from typing import Any

from drtests.objectstore.core import split_uri
from drtests.objectstore.integrity import Inventory, load_inventory
from drtests.objectstore.spark_verify import S3Access, read_only_client, verify_on_spark


def _read(uri: str, access: S3Access) -> bytes:
    if uri.startswith("file://"):
        with open(uri[len("file://") :], "rb") as handle:
            return handle.read()
    if uri.startswith(("s3://", "s3a://")):
        bucket, key = split_uri(uri)
        body: bytes = read_only_client(access).get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    raise ValueError(f"unsupported URI {uri!r} (file://, s3://, s3a://)")


def load_expected(uri: str, access: S3Access) -> Inventory:
    return load_inventory(gzip.decompress(_read(uri, access)))[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drtests-spark-verify")
    parser.add_argument("--job", required=True, help="what to verify, as JSON")
    job: dict[str, Any] = json.loads(parser.parse_args(argv).job)
    access = S3Access(
        job.get("endpoint_url"),
        job.get("region", "us-east-1"),
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
    expected = load_expected(job["expected"], access)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(job.get("name", "drtests-verify"))
    if master := os.environ.get("DRTESTS_SPARK_MASTER"):
        builder = builder.master(master).config("spark.ui.enabled", "false")
    spark = builder.getOrCreate()
    try:
        inventory = job.get("inventory")
        out = job["out"]
        verify_on_spark(
            spark,
            access,
            job["bucket"],
            job.get("prefix", ""),
            expected,
            out[len("file://") :] if out.startswith("file://") else out,
            inventory=(inventory["bucket"], inventory["format"], tuple(inventory["schema"]))
            if inventory
            else None,
            inventory_files=inventory["files"] if inventory else None,
            partitions=int(job.get("partitions", 8)),
        )
    finally:
        spark.stop()
    print(f"findings written to {job['out']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
