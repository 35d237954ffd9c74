"""Slow is not broken: against a deliberately slow HTTP server on loopback, a request that
times out is sent again until the step's deadline (Airflow REST, MLflow, Prometheus,
Pushgateway), a broken answer is not retried, and a deadline that passes still ends the
wait with one clear line."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from drtests.airflow.api import AirflowAPI
from drtests.errors import EnvironmentUnavailable
from drtests.http import request_json
from drtests.monitoring.progress import ProgressPusher
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.procedures.mlflow import server_answers
from fixtures.http_server import serving

SLOW_S = 1.5  # longer than every client timeout below
CLIENT_TIMEOUT_S = 0.5


@dataclass
class SlowServer:
    """Answers the first ``slow`` requests of each path after SLOW_S, the rest at once."""

    slow: int = 2
    requests: list[tuple[str, str]] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    url: str = ""

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if path.startswith("/missing"):
            return 404, {"detail": "not found"}
        if path.startswith("/api/v2/dags/") and "/dagRuns" in path:
            if method == "POST":
                run_id = json.loads(body)["dag_run_id"]
                if run_id in self.runs:
                    return 409, {"detail": "already exists"}
                self.runs[run_id] = "success"
                return 200, {"dag_run_id": run_id}
            return 200, {"state": self.runs.get(path.rsplit("/", 1)[-1], "queued")}
        if path.startswith("/api/v2/dags/"):
            return 200, {"is_paused": False}
        if path.startswith("/api/v1/query"):
            return 200, {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]},
            }
        if path.startswith("/api/2.0/mlflow/experiments/search"):
            return 200, {"experiments": [{"experiment_id": "0"}]}
        return 200, {}

    def seen(self, prefix: str) -> int:
        return sum(1 for _m, p in self.requests if p.startswith(prefix))


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    state = SlowServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = self.path.split("?")[0]
            earlier = state.seen(key)
            state.requests.append((self.command, key))
            status, answer = state.answer(self.command, key, body)
            if earlier < state.slow:
                time.sleep(SLOW_S)
            raw = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on this attempt

        do_GET = do_POST = do_PATCH = do_PUT = _serve

    with serving(Handler) as state.url:
        yield state


def test_a_timed_out_request_is_sent_again_until_the_deadline(slow_server: SlowServer) -> None:
    found = request_json(
        "GET",
        f"{slow_server.url}/anything",
        what="probe",
        timeout=CLIENT_TIMEOUT_S,
        retry_until=time.monotonic() + 30,
    )
    assert found == {}
    assert slow_server.seen("/anything") == 3  # two timed out, the third answered


def test_without_a_deadline_one_timeout_is_the_answer(slow_server: SlowServer) -> None:
    with pytest.raises(EnvironmentUnavailable, match=r"probe: .* no answer within 0.5s$"):
        request_json("GET", f"{slow_server.url}/once", what="probe", timeout=CLIENT_TIMEOUT_S)
    assert slow_server.seen("/once") == 1


def test_a_deadline_that_passes_says_how_long_it_tried(slow_server: SlowServer) -> None:
    slow_server.slow = 100
    started = time.monotonic()
    with pytest.raises(EnvironmentUnavailable) as raised:
        request_json(
            "GET",
            f"{slow_server.url}/always-slow",
            what="probe",
            timeout=CLIENT_TIMEOUT_S,
            retry_until=time.monotonic() + 3,
        )
    assert time.monotonic() - started < 3 + 1.0  # not past the deadline but for scheduling
    assert "no answer within 0.5s" in str(raised.value) and "attempts over" in str(raised.value)
    assert slow_server.seen("/always-slow") >= 3


def test_an_error_answer_is_not_retried(slow_server: SlowServer) -> None:
    slow_server.slow = 0
    with pytest.raises(EnvironmentUnavailable, match="HTTP 404"):
        request_json(
            "GET", f"{slow_server.url}/missing", what="probe", retry_until=time.monotonic() + 30
        )
    assert slow_server.seen("/missing") == 1


def test_a_refused_connection_is_retried_until_the_deadline() -> None:
    from drtests.processes import free_port

    started = time.monotonic()
    with pytest.raises(EnvironmentUnavailable, match="Connection refused") as raised:
        request_json(
            "GET",
            f"http://127.0.0.1:{free_port()}/",
            what="probe",
            retry_until=time.monotonic() + 2,
        )
    assert 1.0 <= time.monotonic() - started <= 2.5  # retried, not past the deadline
    assert "attempts over" in str(raised.value)


def test_an_airflow_dag_run_survives_slow_answers(slow_server: SlowServer) -> None:
    """The trigger timed out after the run was created: the retried trigger meets 409 and
    the run is followed to its end, not triggered twice."""
    api = AirflowAPI(slow_server.url, timeout=CLIENT_TIMEOUT_S, patience=30)
    state, _seconds = api.run_dag("dr_smoke", "dr_check_1", timeout=60)
    assert state == "success"
    assert slow_server.seen("/api/v2/dags/dr_smoke/dagRuns/dr_check_1") == 3
    posts = [r for r in slow_server.requests if r[0] == "POST"]
    assert len(posts) == 3 and list(slow_server.runs) == ["dr_check_1"]


def test_mlflow_and_prometheus_reads_wait_out_a_slow_server(slow_server: SlowServer) -> None:
    answer = server_answers(slow_server.url, patience=30, timeout=CLIENT_TIMEOUT_S)
    assert answer.endswith("1 experiments listed")
    assert slow_server.seen("/api/2.0/mlflow/experiments/search") == 3
    api = PrometheusAPI(slow_server.url, timeout=CLIENT_TIMEOUT_S, patience=30)
    assert [s.value for s in api.query("up")] == [1.0]
    assert slow_server.seen("/api/v1/query") == 3


def test_a_slow_pushgateway_gets_the_push_again(slow_server: SlowServer) -> None:
    pusher = ProgressPusher(slow_server.url, "run-1", timeout=CLIENT_TIMEOUT_S, patience=30)
    pusher.push()
    assert pusher.failures == 0
    assert slow_server.seen("/metrics/job/drtests") == 3


def test_a_pushgateway_that_is_gone_is_logged_not_waited_for() -> None:
    from drtests.processes import free_port

    pusher = ProgressPusher(f"http://127.0.0.1:{free_port()}", "run-1", patience=30)
    started = time.monotonic()
    pusher.push()
    assert pusher.failures == 1 and time.monotonic() - started < 5


def test_an_answer_cut_off_is_retried(slow_server: SlowServer) -> None:
    """A server killed while it answers (headers sent, body short) is restarting, not
    broken: the request is sent again."""
    import socket

    cut = {"n": 0}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while cut["n"] < 3:
            conn, _ = listener.accept()
            conn.recv(65536)
            cut["n"] += 1
            if cut["n"] < 3:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    found = request_json(
        "GET", f"http://127.0.0.1:{port}/", what="probe", retry_until=time.monotonic() + 30
    )
    listener.close()
    assert found == {} and cut["n"] == 3


def test_a_step_records_its_slow_and_retried_requests(slow_server: SlowServer) -> None:
    """A slow platform is visible in the evidence (the step's counts) without failing it."""
    from drtests.procedures.journal import Journal

    journal = Journal()
    with journal.step("Run a DAG end to end", "000 Post-Restore Validation") as step:
        request_json(
            "GET",
            f"{slow_server.url}/counted",
            what="probe",
            timeout=CLIENT_TIMEOUT_S,
            retry_until=time.monotonic() + 30,
        )
    slow_server.slow = 0
    with journal.step("Quick", "-") as quick:
        request_json("GET", f"{slow_server.url}/quick", what="probe", timeout=5)
    assert (step.status, step.slow_requests, step.retried_requests) == ("passed", 2, 2)
    assert (quick.slow_requests, quick.retried_requests) == (0, 0)
