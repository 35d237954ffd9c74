"""The real Hive Metastore 2.3 Thrift service, run from pyspark's bundled jars on a local
PostgreSQL database.

DataNucleus creates Hive's own 2.3 schema (``datanucleus.schema.autoCreateAll``) and records
the VERSION row, so the suite's SQL meets a metastore it did not write. ``s3a://`` locations
are served by Hadoop's ``ViewFileSystemOverloadScheme``, which mounts each bucket on a local
directory: HMS creates its directories there, the data itself lives in the S3 endpoint.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from drtests.errors import EnvironmentUnavailable
from drtests.postgres import PostgresEndpoint
from drtests.processes import ManagedProcess, free_port

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
HIVE_JAR_PREFIX = "hive-metastore-2.3"
INSTALL_HINT = (
    "install Java 17 (apt-get install openjdk-17-jre-headless), Debian's "
    "libpostgresql-jdbc-java (apt-get install libpostgresql-jdbc-java) and pyspark "
    "(pip install 'drtests[hive]')"
)


@dataclass(frozen=True)
class HiveRuntime:
    """Where Java, the Hive 2.3 jars and the PostgreSQL JDBC driver are."""

    java: str
    jars_dir: Path
    jdbc_jar: Path

    def classpath(self, conf_dir: Path) -> str:
        return f"{conf_dir}:{self.jars_dir}/*:{self.jdbc_jar}"


def find_hive_runtime() -> HiveRuntime:
    """Locate the runtime, or say in one line what is missing and how to install it."""
    missing = []
    java = shutil.which("java")
    if java is None:
        missing.append("java")
    spec = importlib.util.find_spec("pyspark")
    jars_dir = Path(spec.origin).parent / "jars" if spec and spec.origin else None
    if jars_dir is None or not any(jars_dir.glob(f"{HIVE_JAR_PREFIX}*.jar")):
        missing.append("pyspark's Hive 2.3 jars")
    if not JDBC_JAR.is_file():
        missing.append(str(JDBC_JAR))
    if importlib.util.find_spec("hmsclient") is None:
        missing.append("the hmsclient Thrift client")
    if missing or java is None or jars_dir is None:
        raise EnvironmentUnavailable(
            f"real HMS tier unavailable: missing {', '.join(missing)}; {INSTALL_HINT}"
        )
    return HiveRuntime(java, jars_dir, JDBC_JAR)


def _property(name: str, value: str) -> str:
    return f"  <property><name>{escape(name)}</name><value>{escape(value)}</value></property>\n"


class HiveMetastoreService:
    """One HMS Thrift server process over one PostgreSQL database."""

    def __init__(
        self,
        runtime: HiveRuntime,
        pg: PostgresEndpoint,
        database: str,
        workdir: Path,
        buckets: tuple[str, ...],
        warehouse: str,
        heap: str = "384m",
    ) -> None:
        self.runtime = runtime
        self.workdir = workdir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf_dir = workdir / "conf"
        self.warehouse = warehouse
        self._write_site(pg, database, buckets)
        self.process = ManagedProcess(
            f"hive-metastore:{self.port}",
            [
                runtime.java,
                f"-Xmx{heap}",
                "-XX:+UseSerialGC",
                # the quick compiler only: half the CPU of a start, which a service that
                # lives for one scenario spends mostly on compiling, not serving
                "-XX:TieredStopAtLevel=1",
                "-Dlog4j2.contextSelector="
                "org.apache.logging.log4j.core.selector.BasicContextSelector",
                "-cp",
                runtime.classpath(self.conf_dir),
                "org.apache.hadoop.hive.metastore.HiveMetaStore",
                "-p",
                str(self.port),
            ],
            workdir / "hive-metastore.log",
            death_signal=signal.SIGKILL,
        )
        self.process.rebind = self._new_port
        from drtests.metastore.thrift import answering  # the hive extra's Thrift client

        self._answering = answering(self.host, lambda: self.port)

    def _new_port(self) -> list[str]:
        """The port was taken between choosing it and the JVM binding it: another one."""
        self.port = free_port()
        self.process.name = f"hive-metastore:{self.port}"
        return [*self.process.argv[:-1], str(self.port)]

    def _write_site(self, pg: PostgresEndpoint, database: str, buckets: tuple[str, ...]) -> None:
        """hive-site.xml with the JDBC credentials, readable by this user only."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "javax.jdo.option.ConnectionURL": f"jdbc:postgresql://{pg.host}:{pg.port}/{database}",
            "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "javax.jdo.option.ConnectionUserName": pg.user,
            "javax.jdo.option.ConnectionPassword": pg.password,
            "datanucleus.schema.autoCreateAll": "true",
            "hive.metastore.schema.verification": "false",
            "hive.metastore.schema.verification.record.version": "true",
            "hive.metastore.warehouse.dir": self.warehouse,
            "fs.s3a.impl": "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme",
            "fs.s3a.impl.disable.cache": "true",
        }
        for bucket in buckets:
            mount = self.workdir / "s3a" / bucket
            mount.mkdir(parents=True, exist_ok=True)
            settings[f"fs.viewfs.mounttable.{bucket}.linkMergeSlash"] = f"file://{mount}"
        site = self.conf_dir / "hive-site.xml"
        site.touch(mode=0o600)
        site.write_text(
            "<configuration>\n"
            + "".join(_property(k, v) for k, v in settings.items())
            + "</configuration>\n"
        )

    def answers(self) -> bool:
        """The readiness probe (``thrift.answering``) of the service on its current port."""
        return self._answering()

    def start(self, timeout: float = 120) -> float:
        self.process.start()
        return self.process.wait_ready(self.answers, timeout)

    def stop(self) -> None:
        self.process.stop()

    def restart(self, timeout: float = 120) -> float:
        """Drop the service's cached id blocks and connections: the runbook's restart."""
        self.stop()
        return self.start(timeout)
