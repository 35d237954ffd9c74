"""A local stand-in for a platform service: an HTTP server with a readiness endpoint.

``--backend-dsn-env VAR`` makes it a metastore front end: it keeps a connection pool of one
to the metastore database, and ``/healthz`` and ``/databases`` (SHOW DATABASES) answer from
it. ``--depends-on URL`` makes it a dependant (history server, notebooks): it is ready only
while the metastore service answers. The DSN is passed through the environment, never argv.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg


class _State:
    def __init__(self, dsn: str | None, depends_on: str | None) -> None:
        self.dsn = dsn
        self.depends_on = depends_on
        self.conn: psycopg.Connection[Any] | None = None

    def databases(self) -> list[str]:
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
