"""A local stand-in for a platform service: an HTTP server with a readiness endpoint.

``--backend-dsn-env VAR`` makes it a metastore front end: it keeps a connection pool of one
to the metastore database, and ``/healthz`` and ``/databases`` (SHOW DATABASES) answer from
it. ``--depends-on URL`` makes it a dependant (history server, notebooks): it is ready only
while the metastore service answers. The DSN is passed through the environment, never argv.

``/metrics`` exports, under the metric names the runbook's dashboards use, what the process
measures of its own work: operation latency and errors (each scrape runs a SHOW DATABASES),
its connection pool, and its resident memory against its memory budget (it has no JVM heap).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

MEMORY_BUDGET_BYTES = 512 * 1024 * 1024
POOL_SIZE = 10


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.latency = Histogram(
            "hive_metastore_operation_latency_seconds",
            "metastore operation latency",
            ["operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "hive_metastore_operation_errors",
            "failed metastore operations",
            ["operation"],
            registry=self.registry,
        )
        self.pool_active = Gauge(
            "hive_metastore_connection_pool_active", "open connections", registry=self.registry
        )
        self.pool_max = Gauge(
            "hive_metastore_connection_pool_max", "pool size", registry=self.registry
        )
        self.pool_max.set(POOL_SIZE)
        for operation in ("get_all_databases",):  # series exist before the first error
            self.latency.labels(operation)
            self.errors.labels(operation)
        self.health = Gauge("hive_metastore_health", "1 while healthy", registry=self.registry)
        Gauge("hive_metastore_memory_budget_bytes", "memory budget", registry=self.registry).set(
            MEMORY_BUDGET_BYTES
        )


class _State:
    def __init__(self, dsn: str | None, depends_on: str | None) -> None:
        self.dsn = dsn
        self.depends_on = depends_on
        self.conn: psycopg.Connection[Any] | None = None
        self.metrics = _Metrics()

    def databases(self) -> list[str]:
        """SHOW DATABASES, timed and counted as the metastore's get_all_databases."""
        with (
            self.metrics.latency.labels("get_all_databases").time(),
            self.metrics.pool_active.track_inprogress(),
        ):
            try:
                return self._databases()
            except Exception:
                self.metrics.errors.labels("get_all_databases").inc()
                raise

    def _databases(self) -> list[str]:
        assert self.dsn is not None
        for _ in range(2):
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
                rows = self.conn.execute('SELECT "NAME" FROM "DBS" ORDER BY 1').fetchall()
                return [str(r[0]) for r in rows]
            except psycopg.OperationalError:
                self.conn = None  # the database went away (restore, kill): reconnect once
        raise RuntimeError("metastore database unreachable")

    def healthy(self) -> tuple[bool, str]:
        try:
            if self.dsn is not None:
                return True, f"{len(self.databases())} databases"
            assert self.depends_on is not None
            with urllib.request.urlopen(self.depends_on, timeout=2) as resp:  # noqa: S310
                return resp.status == 200, "metastore ready"
        except Exception as exc:
            return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend-dsn-env")
    parser.add_argument("--depends-on")
    args = parser.parse_args()
    state = _State(
        os.environ.get(args.backend_dsn_env) if args.backend_dsn_env else None, args.depends_on
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                if self.path == "/databases" and state.dsn is not None:
                    body, status = json.dumps(state.databases()), 200
                elif self.path == "/healthz":
                    ok, detail = state.healthy()
                    body, status = json.dumps({"ok": ok, "detail": detail}), 200 if ok else 503
                elif self.path == "/metrics":
                    if state.dsn is not None:
                        ok, _ = state.healthy()
                        state.metrics.health.set(1 if ok else 0)
                    data = generate_latest(state.metrics.registry)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                else:
                    body, status = "{}", 404
            except Exception as exc:
                body, status = json.dumps({"error": str(exc)}), 503
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
