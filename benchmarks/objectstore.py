"""Bulk S3 restore throughput: drtests' restore of a prefix (server-side copies, 16 at a
time) against ``aws s3 cp --recursive`` and ``aws s3 sync`` doing the same restore on the
same endpoint in the same run. Each copy is checked against the source afterwards, so a
fast but wrong restore cannot win."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import Row, timed
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.objectstore.integrity import compare, take_inventory
from drtests.objectstore.replication import Location, sync

SOURCE, PREFIX = "spark-output-data", "results/"


def run(s3: LocalS3Server, objects: int, object_kib: int) -> list[Row]:
    endpoint = s3.endpoint("us-east-1")
    client = endpoint.client()
    for bucket in (SOURCE, "restore-drtests", "restore-aws-cp", "restore-aws-sync"):
        ensure_bucket(client, bucket)
    body = os.urandom(object_kib * 1024)

    def put(n: int) -> None:
        client.put_object(
            Bucket=SOURCE,
            Key=f"{PREFIX}job-{n % 50:03d}/part-{n:06d}.parquet",
            Body=body,
            ChecksumAlgorithm="SHA256",
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(objects)))
    source = take_inventory(client, SOURCE, PREFIX)
    megabytes = objects * object_kib / 1024
    print(f"S3 restore: {objects} objects of {object_kib} KiB ({megabytes:.0f} MB)", flush=True)

    rows: list[Row] = []
    ours_s, report = timed(
        lambda: sync(
            Location(endpoint, SOURCE, PREFIX), Location(endpoint, "restore-drtests", PREFIX)
        )
    )
    assert report.copied == objects and report.server_side
    _check(client, source, "restore-drtests")
    rows.append(
        (
            "S3 restore: drtests (server-side copies)",
            f"{ours_s:.2f}s",
            f"{objects / ours_s:,.0f} objects/s, {megabytes / ours_s:.1f} MB/s",
        )
    )

    aws = shutil.which("aws")
    if aws is None:
        rows.append(("S3 restore: aws s3 cp / sync", "skipped", "awscli not installed"))
        return rows
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": endpoint.access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key or "",
        "AWS_DEFAULT_REGION": endpoint.region,
    }
    for verb, bucket in (("cp", "restore-aws-cp"), ("sync", "restore-aws-sync")):
        argv = [
            aws,
            "s3",
            verb,
            f"s3://{SOURCE}/{PREFIX}",
            f"s3://{bucket}/{PREFIX}",
            "--endpoint-url",
            s3.url,
            "--only-show-errors",
        ]
        if verb == "cp":
            argv.append("--recursive")
        theirs_s, _ = timed(
            lambda argv=argv: subprocess.run(argv, env=env, check=True, capture_output=True)
        )
        _check(client, source, bucket)
        rows.append(
            (
                f"S3 restore: aws s3 {verb}{' --recursive' if verb == 'cp' else ''}",
                f"{theirs_s:.2f}s",
                f"{objects / theirs_s:,.0f} objects/s; drtests {theirs_s / ours_s:.2f}× as fast",
            )
        )
    return rows


def _check(client: object, source: dict[str, object], bucket: str) -> None:
    restored = take_inventory(client, bucket, PREFIX)  # type: ignore[arg-type]
    problems = compare(source, restored)  # type: ignore[arg-type]
    assert not problems, f"{bucket}: {problems[:3]}"
