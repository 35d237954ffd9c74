"""S3 / MinIO: clients, versioned buckets, listings with checksums, a local S3 server.

Everything goes through the real S3 HTTP API (boto3), locally served by moto's server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from drtests import patience
from drtests.errors import EndpointUnreachable
from drtests.processes import ManagedProcess, free_port, tcp_open

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from drtests.safety import WriteGate

#: requests per S3 call at most: the first and nine retries
S3_ATTEMPTS = 10

#: S3 operations that change nothing; every other operation is a write
READ_OPERATIONS = ("Get", "List", "Head", "SelectObjectContent")


@dataclass(frozen=True)
class S3Endpoint:
    """One S3 API endpoint (a region, or a MinIO deployment)."""

    name: str
    endpoint_url: str | None
    region: str
    access_key_id: str | None = field(repr=False)
    secret_access_key: str | None = field(repr=False)
    #: on a target the run does not own, every mutating request passes this gate first
    gate: WriteGate | None = field(default=None, repr=False, compare=False)

    def client(self) -> S3Client:
        client = self._client()
        if self.gate is not None:
            client.meta.events.register("before-parameter-build.s3", self._gated)
        return client

    def _gated(self, params: dict[str, Any], model: Any, **_kwargs: Any) -> None:
        """The safety rails for one S3 request, before it is even built (``params`` are
        the call's own: Bucket, Key): a dry run records it and sends nothing, a refusal
        sends nothing."""
        if model.name.startswith(READ_OPERATIONS):
            return
        assert self.gate is not None
        key = params.get("Key") or ""
        detail = f" {key}" if key else ""
        self.gate.authorize(
            f"{self.describe()}/{params.get('Bucket', '')}", f"S3 {model.name}{detail}"
        )

    def _client(self) -> S3Client:
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                connect_timeout=3,
                read_timeout=30,
                # botocore's standard retries: timeouts, refused connections, 5xx and
                # throttling, with exponential back-off and jitter (short for errors, from
                # 1 s for throttling): 10 requests ride out an object store that restarts
                retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"},
                s3={"addressing_style": "path"},
                max_pool_connections=32,
            ),
        )
        client.meta.events.register("needs-retry.s3", _tally_attempt)
        return client

    def describe(self) -> str:
        return self.endpoint_url or f"aws:{self.region}"


def _tally_attempt(
    response: tuple[Any, dict[str, Any]] | None,
    caught_exception: Exception | None,
    attempts: int,
    **_: Any,
) -> None:
    """Count an S3 attempt that failed transiently in the run's patience tally (slow when it
    timed out; retried when another attempt follows), so a slow object store is visible in
    the evidence. botocore itself decides on the retry."""
    status = (
        0
        if response is None
        else int(response[1].get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    )
    if caught_exception is not None or status >= 500 or status == 429:
        patience.record(
            slow=isinstance(caught_exception, (ReadTimeoutError, ConnectTimeoutError)),
            retried=attempts < S3_ATTEMPTS,
        )


def s3_error(exc: Exception, what: str, endpoint: S3Endpoint) -> EndpointUnreachable:
    """One line for a failed S3 call: unreachable endpoint, wrong credentials, missing bucket."""
    if isinstance(exc, EndpointConnectionError):
        return EndpointUnreachable(f"S3 endpoint {endpoint.describe()} unreachable during {what}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "error")
        metadata = exc.response.get("ResponseMetadata", {})
        status = int(metadata.get("HTTPStatusCode", 0))
        if status >= 500 or code in ("SlowDown", "Throttling", "RequestLimitExceeded"):
            attempts = int(metadata.get("RetryAttempts", 0)) + 1
            return EndpointUnreachable(
                f"S3 {what} on {endpoint.describe()} failed after {attempts} attempts: "
                f"{code} (the object store is overloaded or down)"
            )
        return EndpointUnreachable(f"S3 {what} on {endpoint.describe()} refused: {code}")
    return EndpointUnreachable(f"S3 {what} on {endpoint.describe()} failed: {exc}")


S3_ERRORS = (BotoCoreError, ClientError)


def ensure_bucket(client: S3Client, bucket: str, *, versioned: bool = True) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        region = client.meta.region_name
        if region and region != "us-east-1":
            client.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
        else:
            client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def split_uri(uri: str) -> tuple[str, str]:
    """``s3a://bucket/key/prefix`` → (bucket, "key/prefix")."""
    scheme, _, rest = uri.partition("://")
    if not rest or scheme not in {"s3", "s3a", "s3n"}:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = rest.partition("/")
    return bucket, key


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    etag: str


def iter_objects(client: S3Client, bucket: str, prefix: str = "") -> Iterator[ObjectEntry]:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield ObjectEntry(obj["Key"], obj["Size"], obj["ETag"].strip('"'))


def prefix_exists(client: S3Client, bucket: str, prefix: str) -> bool:
    page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return page.get("KeyCount", 0) > 0


def delete_all_versions(client: S3Client, bucket: str, prefix: str) -> int:
    """Remove every version and delete marker under ``prefix`` (test isolation only)."""
    deleted = 0
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        batch: list[dict[str, Any]] = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if batch:
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
            deleted += len(batch)
    return deleted


class LocalS3Server:
    """A moto S3 server process on 127.0.0.1: a real HTTP S3 API with its own state."""

    def __init__(self, base_dir: Path, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.process = ManagedProcess(
            f"s3-{name}",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            base_dir / f"s3-{name}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, region: str) -> S3Endpoint:
        # moto accepts any credentials; these are fixed test keys, not secrets
        return S3Endpoint(self.name, self.url, region, "drtests-local", "drtests-local-key")

    def start(self, timeout: float = 30) -> None:
        self.process.start()
        self.process.wait_ready(lambda: tcp_open("127.0.0.1", self.port), timeout)

    def stop(self) -> None:
        self.process.stop()
