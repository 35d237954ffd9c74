"""Option 4, Point-in-Time Recovery: continuous WAL archiving to S3, base backups with
``pg_basebackup`` verified by ``pg_verifybackup``, and recovery to ``recovery_target_time``
into a fresh data directory that then takes the damaged one's place.

``archive_command`` copies each finished segment into a spool (atomically: copy, then
rename); the :class:`WalShipper` uploads the spool to the backup bucket with SHA-256
checksums. ``track_commit_timestamp`` is on, so what a recovery kept is measured from the
commit times of the rows themselves.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drtests.errors import CorruptBackup, EnvironmentUnavailable
from drtests.objectstore.archive import MultipartWriter
from drtests.postgres import LocalPostgres, PostgresEndpoint, _tool_error, connect
from drtests.processes import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RECOVERY_MARK = "# drtests point-in-time recovery"


def enable_archiving(pg: LocalPostgres, spool: Path) -> None:
    """Settings for continuous archiving; the server must be (re)started after."""
    spool.mkdir(parents=True, exist_ok=True)
    pg.own(spool)
    pg.configure(
        wal_level="replica",
        archive_mode="on",
        archive_command=(
            f"test ! -f {spool}/%f && cp %p {spool}/%f.part && mv {spool}/%f.part {spool}/%f"
        ),
        track_commit_timestamp="on",
        max_wal_senders="4",
    )


@dataclass
class WalShipper:
    """Uploads archived WAL segments from the spool to s3://bucket/prefix."""

    spool: Path
    client: S3Client
    bucket: str
    prefix: str

    def ship(self) -> int:
        shipped = 0
        present = {
            o["Key"].rsplit("/", 1)[-1]
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for o in page.get("Contents", [])
        }
        for segment in sorted(self.spool.iterdir()):
            if segment.suffix == ".part" or segment.name in present:
                continue
            self.client.upload_file(
                str(segment),
                self.bucket,
                self.prefix + segment.name,
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            )
            shipped += 1
        return shipped

    def flush(self, endpoint: PostgresEndpoint, timeout: float = 30) -> int:
        """Close the current segment, wait until it is archived, and ship everything."""
        with connect(endpoint, "postgres", autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            segment = str(row[0])

            def archived() -> bool:
                done = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                return done is not None and done[0] is not None and str(done[0]) >= segment

            wait_until(archived, timeout, f"archiving of WAL segment {segment}")
        return self.ship()


@dataclass(frozen=True)
class BaseBackup:
    bucket: str
    key: str
    label: str
    size: int
    started_at: datetime


def take_base_backup(
    endpoint: PostgresEndpoint, workdir: Path, client: S3Client, bucket: str, key: str
) -> BaseBackup:
    """pg_basebackup (plain, WAL streamed, SHA-256 manifest) → pg_verifybackup → tar.gz in S3."""
    from drtests.ledger import utcnow

    started = utcnow()
    dest = workdir / f"basebackup-{started:%H%M%S%f}"
    label = f"drtests {started.isoformat()}"
    result = subprocess.run(
        [
            endpoint.tool("pg_basebackup"),
            "-h",
            endpoint.host,
            "-p",
            str(endpoint.port),
            "-U",
            endpoint.user,
            "-D",
            str(dest),
            "-Fp",
            "-X",
            "stream",
            "-c",
            "fast",
            "--manifest-checksums=SHA256",
            "-l",
            label,
        ],
        env=endpoint.tool_env(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise EnvironmentUnavailable(f"pg_basebackup failed: {_tool_error(result, endpoint)}")
    verify_base_backup(endpoint, dest)
    writer = MultipartWriter(client, bucket, key)
    try:
        with tarfile.open(fileobj=writer, mode="w|gz") as tar:
            tar.add(str(dest), arcname="data")
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    shutil.rmtree(dest, ignore_errors=True)
    return BaseBackup(bucket, key, label, writer.size, started)


def verify_base_backup(endpoint: PostgresEndpoint, directory: Path) -> None:
    result = subprocess.run(
        [endpoint.tool("pg_verifybackup"), "--no-parse-wal", str(directory)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise CorruptBackup(
            f"base backup {directory.name} fails pg_verifybackup: {_tool_error(result, endpoint)}"
        )


@dataclass
class Recovery:
    server: LocalPostgres
    replay_seconds: float
    wal_bytes: int


def recover_to(
    damaged: LocalPostgres,
    base: BaseBackup,
    client: S3Client,
    wal_prefix: str,
    target_time: datetime,
    workdir: Path,
) -> Recovery:
    """Restore the base backup into a fresh directory, fetch the archived WAL, and replay it
    up to ``target_time`` on a server of its own; returns it, promoted, for verification."""
    recovered = LocalPostgres(workdir, name="postgres-recovered")
    recovered.password = damaged.password  # the restored cluster keeps its own roles
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    body = client.get_object(Bucket=base.bucket, Key=base.key)["Body"]
    with tarfile.open(fileobj=body, mode="r|gz") as tar:
        tar.extractall(workdir, filter="data")  # the 'data' directory inside the archive
    verify_base_backup(damaged.endpoint, recovered.data_dir)
    wal_dir = workdir / "wal"
    wal_dir.mkdir()
    wal_bytes = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=base.bucket, Prefix=wal_prefix
    ):
        for obj in page.get("Contents", []):
            client.download_file(
                base.bucket, obj["Key"], str(wal_dir / obj["Key"].rsplit("/", 1)[-1])
            )
            wal_bytes += int(obj["Size"])
    recovered.socket_dir.mkdir(exist_ok=True)
    recovered.data_dir.chmod(0o700)
    with (recovered.data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"{RECOVERY_MARK}\nrestore_command = 'cp {wal_dir}/%f %p'\n"
            f"recovery_target_time = '{target_time.isoformat()}'\n"
            "recovery_target_action = 'promote'\narchive_mode = 'off'\n"
        )
    (recovered.data_dir / "recovery.signal").touch()
    for leftover in ("postmaster.pid", "postmaster.opts"):
        (recovered.data_dir / leftover).unlink(missing_ok=True)
    recovered.own(workdir)
    start = time.monotonic()
    recovered.start(timeout=120)
    with connect(recovered.endpoint, "postgres", autocommit=True) as conn:

        def promoted() -> bool:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return row is not None and not row[0]

        wait_until(promoted, 120, "point-in-time recovery")
    return Recovery(recovered, time.monotonic() - start, wal_bytes)


def replace_cluster(damaged: LocalPostgres, recovery: Recovery) -> Path:
    """The recovered data directory takes the damaged one's place (same path, same port);
    the damaged one is kept beside it. Archiving resumes, on the new timeline."""
    recovery.server.stop()
    damaged.stop()
    kept = damaged.data_dir.with_name(f"{damaged.data_dir.name}.damaged-{int(time.time())}")
    damaged.data_dir.rename(kept)
    recovery.server.data_dir.rename(damaged.data_dir)
    auto = damaged.data_dir / "postgresql.auto.conf"
    text = auto.read_text()
    auto.write_text(text.split(RECOVERY_MARK)[0])
    damaged.start(timeout=60)
    return kept


def commit_times(conn: Any, table: str, key: str) -> dict[int, datetime]:
    """Commit time of each row's last change (track_commit_timestamp)."""
    rows = conn.execute(f'SELECT "{key}", pg_xact_commit_timestamp(xmin) FROM "{table}"').fetchall()
    return {int(k): t for k, t in rows if t is not None}
