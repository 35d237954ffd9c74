"""What verifying a lake costs per object, by path: reading every object (the baseline a
checksum-blind verifier pays), S3's stored checksums after a listing, and an S3 Inventory
report instead of the listing; the Spark path's objects/s with 1 and 2 cores; and a
synthetic inventory of 10^6 objects verified end to end with memory that does not grow.

Requests are counted by operation on the client, bytes are GetObject bodies; every path's
result is compared with the baseline's so a cheap but wrong path cannot win.
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from boto3.s3.transfer import TransferConfig

from benchmarks.common import Row, timed
from drtests.objectstore import LocalS3Server, S3Endpoint, ensure_bucket
from drtests.objectstore.integrity import (
    ObjectState,
    compare,
    hash_object,
    problem_for,
    stream_states,
    take_inventory,
)
from drtests.objectstore.s3inventory import latest_manifest, publish_inventory, read_inventory

LAKE, REPORTS, PREFIX = "lake", "lake-inventory", "warehouse/"
MIB = 1024 * 1024


class Meter:
    """Requests by operation and GetObject bytes, counted on one client."""

    def __init__(self, client: Any) -> None:
        self.requests = 0
        self.bytes = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.s3", self._call)
        client.meta.events.register("after-call.s3.GetObject", self._got)

    def _call(self, **_: Any) -> None:
        with self._lock:
            self.requests += 1

    def _got(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.bytes += int(parsed.get("ContentLength") or 0)


def _seed(endpoint: S3Endpoint, objects: int, multipart: int, tmp: Path) -> None:
    client = endpoint.client()
    ensure_bucket(client, LAKE)
    ensure_bucket(client, REPORTS)
    body = os.urandom(16 * 1024)

    def put(n: int) -> None:
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if n % 50 else {}
        client.put_object(
            Bucket=LAKE, Key=f"{PREFIX}part-{n:07d}", Body=body + bytes(n % 7), **extra
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(objects)))
    big = tmp / "big.bin"
    for n in range(multipart):
        big.write_bytes(os.urandom(10 * MIB))
        client.upload_file(
            str(big),
            LAKE,
            f"{PREFIX}big-{n:03d}.bin",
            ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
        )


def _read_everything(endpoint: S3Endpoint) -> dict[str, ObjectState]:
    """The baseline: list, then read and hash every object."""
    client = endpoint.client()
    meter = Meter(client)
    listed = [
        (obj["Key"], int(obj["Size"]), obj["LastModified"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix=PREFIX)
        for obj in page.get("Contents", [])
    ]

    def state(item: tuple[str, int, datetime]) -> ObjectState:
        key, size, modified = item
        return ObjectState(key[len(PREFIX) :], size, hash_object(client, LAKE, key), None, modified)

    with ThreadPoolExecutor(max_workers=16) as pool:
        states = {s.key: s for s in pool.map(state, listed)}
    _read_everything.meter = meter  # type: ignore[attr-defined]
    return states


def run(s3: LocalS3Server, objects: int, synthetic: int) -> list[Row]:
    endpoint = s3.endpoint("us-east-1")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        multipart = max(1, objects // 200)
        _seed(endpoint, objects, multipart, Path(tmp))
    total = objects + multipart
    print(f"S3 scale: {objects} objects of 16 KiB + {multipart} multipart of 10 MiB", flush=True)

    base_s, baseline = timed(lambda: _read_everything(endpoint))
    base_meter: Meter = _read_everything.meter  # type: ignore[attr-defined]
    manifest = take_inventory(endpoint.client(), LAKE, PREFIX)  # the backup's manifest

    client = endpoint.client()
    listed_meter = Meter(client)
    stored_s, stored = timed(lambda: take_inventory(client, LAKE, PREFIX, known=manifest))
    assert compare(baseline, stored) == [], "stored checksums disagree with the bytes"

    publish_inventory(endpoint.client(), LAKE, REPORTS, "", "daily")
    client = endpoint.client()
    inventory_meter = Meter(client)

    def from_inventory() -> dict[str, ObjectState]:
        report = latest_manifest(client, REPORTS, "", LAKE, "daily")
        keys = (row.key for row in read_inventory(client, report, PREFIX))
        return take_inventory(client, LAKE, PREFIX, known=manifest, keys=keys)

    inventory_s, from_report = timed(from_inventory)
    assert compare(baseline, from_report) == []
    for name, seconds, meter in (
        ("read every object (baseline)", base_s, base_meter),
        ("listing + stored checksums", stored_s, listed_meter),
        ("inventory + stored checksums", inventory_s, inventory_meter),
    ):
        rows.append(
            (
                f"S3 verify {total} objects: {name}",
                f"{seconds:.2f}s",
                f"{meter.requests / total:.3f} requests/object, "
                f"{meter.bytes / total / 1024:,.1f} KiB read/object; "
                f"{base_s / seconds:.2f}× the baseline's speed",
            )
        )
    rows += _spark_rows(endpoint, manifest, total)
    rows += _synthetic_rows(synthetic)
    return rows


def _spark_rows(endpoint: S3Endpoint, manifest: dict[str, ObjectState], total: int) -> list[Row]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return [("S3 verify on Spark", "skipped", "pyspark not installed")]
    from drtests.objectstore.spark_verify import S3Access, read_findings, verify_on_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    access = S3Access(
        endpoint.endpoint_url, endpoint.region, endpoint.access_key_id, endpoint.secret_access_key
    )
    rates: dict[int, float] = {}
    rows: list[Row] = []
    for cores in (1, 2):
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName(f"drtests-bench-{cores}")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        try:
            with tempfile.TemporaryDirectory() as out:
                # the first job pays the executors' start-up: measured on the second
                verify_on_spark(spark, access, LAKE, PREFIX, manifest, f"{out}/warm", partitions=4)
                started = time.perf_counter()
                path = verify_on_spark(
                    spark, access, LAKE, PREFIX, manifest, f"{out}/run", partitions=8
                )
                seconds = time.perf_counter() - started
                assert read_findings(path) == []
        finally:
            spark.stop()
        rates[cores] = total / seconds
        rows.append(
            (
                f"S3 verify on Spark local[{cores}]",
                f"{seconds:.2f}s",
                f"{rates[cores]:,.0f} objects/s"
                + (f"; {rates[2] / rates[1]:.2f}× local[1]" if cores == 2 else ""),
            )
        )
    return rows


# ------------------------------------------------------------------ a synthetic lake


def _checksum(key: str) -> str:
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


class _SyntheticLake(BaseHTTPRequestHandler):
    """HeadObject for any key of bucket ``lake``: stored SHA-256 derived from the key (so
    the expected manifest needs no memory either); GetObject for the inventory files."""

    folder: ClassVar[Path] = Path()
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        key = self.path.split("?", 1)[0].split("/", 2)[2]
        self.send_response(200)
        self.send_header("Content-Length", "1024")
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.send_header("Last-Modified", formatdate(usegmt=True))
        self.send_header("x-amz-checksum-sha256", _checksum(key))
        self.send_header("x-amz-checksum-type", "FULL_OBJECT")
        self.end_headers()

    def do_GET(self) -> None:
        from urllib.parse import unquote

        name = unquote(self.path.split("?", 1)[0]).rsplit("/", 1)[-1]
        path = self.folder / name
        body = path.read_bytes() if path.is_file() else None
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


def serve_synthetic(folder: str, port_file: str) -> None:
    """The synthetic lake in a process of its own: the server's work does not share the
    verifying process's interpreter lock."""
    _SyntheticLake.folder = Path(folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SyntheticLake)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def synthetic_verify(objects: int) -> dict[str, float]:
    """Verify ``objects`` keys listed by a synthetic inventory; in a child process so its
    peak RSS is its own."""
    import gzip
    import json

    import boto3
    from botocore.config import Config

    from drtests.objectstore.s3inventory import FIELDS, parse_manifest

    per_file = 100_000
    with tempfile.TemporaryDirectory() as folder:
        entries = []
        for start in range(0, objects, per_file):
            lines = "".join(
                f'"{LAKE}","{PREFIX}k{n:09d}","","true","false","1024",'
                f'"2026-01-01T00:00:00.000Z","SHA256"\n'
                for n in range(start, min(objects, start + per_file))
            )
            body = gzip.compress(lines.encode(), compresslevel=1)
            name = f"{len(entries):05d}.csv.gz"
            (Path(folder) / name).write_bytes(body)
            entries.append(
                {
                    "key": f"inv/data/{name}",
                    "size": len(body),
                    "MD5checksum": hashlib.md5(body).hexdigest(),  # noqa: S324
                }
            )
        document = {
            "sourceBucket": LAKE,
            "creationTimestamp": str(int(time.time() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": ", ".join(FIELDS),
            "files": entries,
        }
        port_file = Path(folder) / "port"
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from benchmarks.s3scale import serve_synthetic as s; s({folder!r}, "
                f"{str(port_file)!r})",
            ],
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            client = boto3.client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{port_file.read_text()}",
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",  # noqa: S106
                config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
            )
            manifest = parse_manifest(REPORTS, "inv/manifest.json", json.dumps(document).encode())
            stamp = datetime.now(UTC)

            def expected(relative: str) -> ObjectState:
                digest = base64.b64decode(_checksum(PREFIX + relative)).hex()
                return ObjectState(relative, 1024, digest, None, stamp)

            keys: Iterator[str] = (row.key for row in read_inventory(client, manifest, PREFIX))
            start = time.perf_counter()
            checked = problems = 0
            for state in stream_states(client, LAKE, PREFIX, keys, lambda _k: None, workers=32):
                checked += 1
                if problem_for(state.key, expected(state.key), state) is not None:
                    problems += 1
            seconds = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait()
    assert checked == objects and problems == 0, (checked, problems)
    return {
        "seconds": seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _synthetic_rows(objects: int) -> list[Row]:
    rows: list[Row] = []
    small = max(1, objects // 10)
    results = {}
    for n in (small, objects):
        print(f"S3 scale: synthetic inventory of {n:,} objects", flush=True)
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from benchmarks.s3scale import synthetic_verify as v; "
                f"import json; print(json.dumps(v({n})))",
            ],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        )
        import json

        results[n] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            (
                f"S3 verify, synthetic inventory of {n:,} objects (stored checksums)",
                f"{results[n]['seconds']:.1f}s",
                f"{n / results[n]['seconds']:,.0f} objects/s; peak RSS "
                f"{results[n]['rss_mb']:.0f} MB"
                + (
                    f" ({results[n]['rss_mb'] / results[small]['rss_mb']:.2f}× that at {small:,})"
                    if n == objects
                    else ""
                ),
            )
        )
    return rows
