"""Slow is not broken, for the waits that are not HTTP: PostgreSQL and HMS Thrift readiness,
Kubernetes reads and watches, and S3 requests, each against a deliberately slow (or
briefly failing) server. Only the wait's own deadline fails it."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError
from hmsclient.genthrift.hive_metastore import ThriftHiveMetastore
from kubernetes import client
from thrift.protocol import TBinaryProtocol
from thrift.server import TServer
from thrift.transport import TSocket, TTransport

from drtests import patience
from drtests.environments import Environment
from drtests.errors import EnvironmentUnavailable
from drtests.load import SlowProxy
from drtests.metastore.thrift import answering, show_databases
from drtests.objectstore.core import S3_ATTEMPTS, S3Endpoint, s3_error
from drtests.platform.kubernetes import KubernetesPlatform
from drtests.postgres import LocalPostgres, accepting_connections, readiness_probe
from drtests.processes import free_port, growing, wait_until
from fixtures.kube_controllers import runbook_workloads
from fixtures.kubernetes import KubeEmulator
from tests.test_kubernetes_platform import NS, WORKLOADS


@pytest.fixture
def slow_proxies() -> Iterator[list[SlowProxy]]:
    made: list[SlowProxy] = []
    yield made
    for proxy in made:
        proxy.stop()


def _slow(proxies: list[SlowProxy], port: int, delay_s: float) -> int:
    proxy = SlowProxy(("127.0.0.1", port), delay_s)
    proxies.append(proxy)
    return proxy.port


# ------------------------------------------------------------------ the probe itself


def test_a_growing_probe_waits_out_a_service_slower_than_its_first_try() -> None:
    tries: list[float] = []

    def answers_after_300ms(timeout: float) -> bool:
        tries.append(timeout)
        if timeout < 0.3:
            time.sleep(timeout)  # the try times out
            return False
        return True

    before = patience.tally()
    wait_until(growing(answers_after_300ms, 0.1, 1.0), 5, "slow service", interval=0)
    assert tries == [0.1, 0.2, 0.4]
    # two tries timed out, and each was followed by another
    assert patience.tally() - before == patience.Tally(slow=2, retried=2)


def test_a_try_never_outlasts_the_deadline_of_its_wait() -> None:
    """Each try is cut to the time the wait has left: a wait of 2 s on a service that never
    answers ends at its deadline, not one growing try later, and says how it tried."""
    tries: list[float] = []

    def never(timeout: float) -> bool:
        tries.append(timeout)
        time.sleep(timeout)
        return False

    start = time.monotonic()
    expected = r"hung service not ready after 2s \(\d+ tries"
    with pytest.raises(EnvironmentUnavailable, match=expected):
        wait_until(growing(never, 1.5, 30), 2, "hung service")
    assert time.monotonic() - start < 3.0
    assert tries[0] == 1.5 and tries[1] <= 0.6, tries


def test_a_growing_probe_stops_growing_at_its_limit_and_the_deadline_ends_the_wait() -> None:
    tries: list[float] = []

    def never(timeout: float) -> bool:
        tries.append(timeout)
        time.sleep(timeout)
        return False

    with pytest.raises(EnvironmentUnavailable, match="never not ready after 1s"):
        wait_until(growing(never, 0.01, 0.04), 1, "never", interval=0)
    assert max(tries) == 0.04 and tries.count(0.04) > 3


def test_a_refused_try_is_not_counted_as_slow_and_does_not_grow() -> None:
    tries: list[float] = []

    def refused(timeout: float) -> bool:
        tries.append(timeout)
        return False

    probe = growing(refused, 0.5, 4.0)
    for _ in range(3):
        assert not probe()
    assert tries == [0.5, 0.5, 0.5]


# ------------------------------------------------------------------ PostgreSQL


def test_postgres_readiness_waits_out_a_server_slower_than_pg_isready(
    dr_environment: Environment, slow_proxies: list[SlowProxy]
) -> None:
    pg = dr_environment.postgres
    assert pg.bin_dir is not None
    port = _slow(slow_proxies, pg.port, 4.0)  # pg_isready gives up after 3 s
    assert not accepting_connections(pg.bin_dir, port)
    waited = wait_until(readiness_probe(pg.bin_dir, port), 30, "PostgreSQL")
    assert 4 <= waited < 30


def test_a_postgres_server_whose_port_was_taken_starts_on_another() -> None:
    # not pytest's tmp_path: PostgreSQL runs as its own user when the suite runs as root
    workdir = Path(tempfile.mkdtemp(prefix="drtests-rebind-"))
    workdir.chmod(0o755)
    server = LocalPostgres(workdir / "pg")
    server.init()
    taken = server.port
    with socket.create_server(("127.0.0.1", taken)):
        server.start(timeout=30)
        try:
            assert server.port != taken
            assert accepting_connections(server.bin_dir, server.port)
            assert server.process is not None and server.process.rebind is None
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def test_postgres_readiness_ends_at_the_deadline_when_nothing_listens(
    dr_environment: Environment,
) -> None:
    assert dr_environment.postgres.bin_dir is not None
    probe = readiness_probe(dr_environment.postgres.bin_dir, free_port())
    with pytest.raises(EnvironmentUnavailable, match="PostgreSQL not ready after 2s"):
        wait_until(probe, 2, "PostgreSQL")


# ------------------------------------------------------------------ HMS Thrift


class _Metastore:
    """The one call a readiness probe makes, served over the real Thrift protocol."""

    def get_all_databases(self) -> list[str]:
        return ["default", "sales"]


@pytest.fixture
def thrift_metastore() -> Iterator[int]:
    port = free_port()
    server = TServer.TThreadedServer(
        ThriftHiveMetastore.Processor(_Metastore()),
        TSocket.TServerSocket(host="127.0.0.1", port=port),
        TTransport.TBufferedTransportFactory(),
        TBinaryProtocol.TBinaryProtocolFactory(),
        daemon=True,
    )
    threading.Thread(target=server.serve, daemon=True).start()
    wait_until(lambda: _listening(port), 10, "Thrift test server")
    yield port


def _listening(port: int) -> bool:
    try:
        show_databases("127.0.0.1", port, timeout=1)
    except EnvironmentUnavailable:
        return False
    return True


def test_hms_readiness_waits_out_a_service_that_answers_after_the_first_try(
    thrift_metastore: int, slow_proxies: list[SlowProxy]
) -> None:
    port = _slow(slow_proxies, thrift_metastore, 3.0)  # the first try gives it 2 s
    with pytest.raises(EnvironmentUnavailable):
        show_databases("127.0.0.1", port, timeout=2)
    before = patience.tally()
    waited = wait_until(answering("127.0.0.1", port), 30, "HMS")
    assert 3 <= waited < 30
    assert (patience.tally() - before).slow >= 1
    assert show_databases("127.0.0.1", port, timeout=10) == ["default", "sales"]


def test_hms_readiness_that_never_answers_fails_at_the_deadline_with_its_name() -> None:
    with pytest.raises(EnvironmentUnavailable, match="HMS not ready after 1s"):
        wait_until(answering("127.0.0.1", free_port()), 1, "HMS")


# ------------------------------------------------------------------ Kubernetes


def _platform(url: str, request_timeout: float) -> KubernetesPlatform:
    configuration = client.Configuration()
    configuration.host = url
    return KubernetesPlatform(
        client.ApiClient(configuration),
        NS,
        WORKLOADS,
        lambda _target, _what: None,
        context="test",
        request_timeout=request_timeout,
    )


def test_kubernetes_waits_and_watches_hold_up_behind_a_slow_api_server(
    kube_emulator: KubeEmulator, slow_proxies: list[SlowProxy]
) -> None:
    """Every answer of the API server held back 1.5 s, longer than one request may take:
    reads are asked again and watches watched again until the wait's deadline."""
    controllers = runbook_workloads(client.ApiClient(_configuration(kube_emulator.url)), NS)
    try:
        port = int(kube_emulator.url.rsplit(":", 1)[1])
        slow_url = f"http://127.0.0.1:{_slow(slow_proxies, port, 1.5)}"
        hasty = _platform(slow_url, request_timeout=1.0)
        with pytest.raises(EnvironmentUnavailable, match="unreachable"):
            hasty.replicas("spark-hive-metastore")  # one read on its own is not patient
        before = patience.tally()
        with pytest.raises(EnvironmentUnavailable, match="unreachable"):
            hasty.wait_ready("spark-hive-metastore", 10)  # a wait is, until its deadline
        assert (patience.tally() - before).retried >= 1
        platform = _platform(slow_url, request_timeout=10.0)
        platform.scale("spark-hive-metastore", 0)
        assert platform.replicas("spark-hive-metastore") == 0
        platform.scale("spark-hive-metastore", 1)
        assert platform.wait_ready("spark-hive-metastore", 60) < 60
    finally:
        controllers.close()
    assert not controllers.errors, controllers.errors


def _configuration(url: str) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = url
    return configuration


# ------------------------------------------------------------------ S3


class _ThrottlingS3(BaseHTTPRequestHandler):
    """An S3 endpoint that answers an error (503 SlowDown: S3 throttling) to the first
    ``busy`` requests, then an empty listing: an object store under load."""

    busy = 3
    error = (503, "SlowDown")
    seen: ClassVar[list[str]] = []

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        if len(self.seen) <= self.busy:
            status, code = self.error
            body = f"<Error><Code>{code}</Code><Message>busy</Message></Error>".encode()
            self.send_response(status)
        else:
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                b"<Name>lake</Name><Prefix></Prefix><KeyCount>0</KeyCount>"
                b"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
            )
            self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _s3(url: str) -> Any:
    return S3Endpoint("lake", url, "us-east-1", "test", "test").client()


def test_s3_throttling_is_retried_with_back_off_and_tallied() -> None:
    _ThrottlingS3.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = patience.tally()
        answer = _s3(f"http://127.0.0.1:{server.server_port}").list_objects_v2(Bucket="lake")
        assert answer["KeyCount"] == 0
        assert len(_ThrottlingS3.seen) == 4
        assert (patience.tally() - before).retried == 3  # requests sent again
    finally:
        server.shutdown()
        server.server_close()


def test_s3_that_keeps_failing_is_one_line_after_its_attempts() -> None:
    _ThrottlingS3.seen = []
    _ThrottlingS3.busy = 1000
    _ThrottlingS3.error = (500, "InternalError")  # errors back off from 50 ms, not 1 s
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = S3Endpoint("lake", f"http://127.0.0.1:{server.server_port}", "us-east-1", "t", "t")
    try:
        before = patience.tally()
        with pytest.raises(ClientError) as caught:
            endpoint.client().list_objects_v2(Bucket="lake")
        assert len(_ThrottlingS3.seen) == S3_ATTEMPTS
        assert (patience.tally() - before).retried == S3_ATTEMPTS - 1
        message = str(s3_error(caught.value, "list objects", endpoint))
        assert f"failed after {S3_ATTEMPTS} attempts: InternalError" in message
    finally:
        _ThrottlingS3.busy = 3
        _ThrottlingS3.error = (503, "SlowDown")
        server.shutdown()
        server.server_close()


def test_s3_behind_a_slow_network_answers_whole(
    dr_environment: Environment, slow_proxies: list[SlowProxy], tmp_path: Path
) -> None:
    endpoint = dr_environment.s3_primary
    assert endpoint.endpoint_url is not None
    port = int(endpoint.endpoint_url.rsplit(":", 1)[1].rstrip("/"))
    slow = _s3(f"http://127.0.0.1:{_slow(slow_proxies, port, 1.0)}")
    fast = endpoint.client()
    bucket = f"slow-{free_port()}"
    fast.create_bucket(Bucket=bucket)
    try:
        payload = bytes(range(256)) * 4096
        slow.put_object(Bucket=bucket, Key="part-0.parquet", Body=payload)
        got = slow.get_object(Bucket=bucket, Key="part-0.parquet")["Body"].read()
        assert got == payload
        listed = slow.list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in listed] == ["part-0.parquet"]
    finally:
        fast.delete_object(Bucket=bucket, Key="part-0.parquet")
        fast.delete_bucket(Bucket=bucket)
