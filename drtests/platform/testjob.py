"""The embedded platform's test job (the runbooks' final "test job completed successfully"):
a short batch process that does what a Spark job does first against a restored metastore —
list databases and tables, resolve each table's location, and read a data file there.

Run as ``python -m drtests.platform.testjob``; the DSN and S3 settings come from the
environment, never argv. Exit 0 with a summary line, 1 naming the first thing it could not
read.
"""

from __future__ import annotations

import os
import sys

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from drtests.objectstore import split_uri

DSN_ENV = "DRTESTS_TESTJOB_DSN"
S3_ENV = ("DRTESTS_TESTJOB_S3_URL", "DRTESTS_TESTJOB_S3_KEY", "DRTESTS_TESTJOB_S3_SECRET")


def run() -> str:
    url, key, secret = (os.environ[name] for name in S3_ENV)
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
    with psycopg.connect(os.environ[DSN_ENV], connect_timeout=5) as conn:
        rows = conn.execute(
            'SELECT d."NAME", t."TBL_NAME", s."LOCATION" FROM "TBLS" t '
            'JOIN "DBS" d ON d."DB_ID" = t."DB_ID" LEFT JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            "WHERE t.\"TBL_TYPE\" <> 'VIRTUAL_VIEW' ORDER BY 1, 2"
        ).fetchall()
    if not rows:
        raise RuntimeError("the metastore lists no tables")
    read = 0
    for db, table, location in rows:
        if not location:
            raise RuntimeError(f"{db}.{table} has no location")
        bucket, prefix = split_uri(location)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/", MaxKeys=1)
        if not listed.get("Contents"):
            raise RuntimeError(f"{db}.{table}: no data at {location}")
        s3.get_object(Bucket=bucket, Key=listed["Contents"][0]["Key"])["Body"].read()
        read += 1
    databases = len({db for db, _, _ in rows})
    return f"{databases} databases, {len(rows)} tables resolved, {read} data files read"


def main() -> int:
    try:
        print(f"test job completed: {run()}")
    except (psycopg.Error, BotoCoreError, ClientError, RuntimeError, ValueError, KeyError) as exc:
        print(f"test job failed: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
