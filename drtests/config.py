"""Profiles: what a run touches, the objectives it is measured against, and its safety rails.

A profile is a TOML file. The local profile is built in; a live profile is written by the
user and validated here, so a typo or a missing endpoint is one clear line, not a traceback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from drtests.errors import ProfileError

EnvironmentKind = Literal["local", "containers", "live"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Objective(_Strict):
    """Recovery objectives for one procedure, in seconds."""

    rto_seconds: float = Field(gt=0)
    rpo_seconds: float = Field(ge=0)


class PostgresTarget(_Strict):
    """A PostgreSQL database the suite reads, faults and restores (live mode)."""

    dsn: SecretStr

    @field_validator("dsn")
    @classmethod
    def _is_postgres_uri(cls, value: SecretStr) -> SecretStr:
        dsn = value.get_secret_value()
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URI")
        try:
            parts = urlsplit(dsn)
            _port = parts.port
        except ValueError as exc:  # the message names the part, never the secret
            raise ValueError(f"is not a valid URI ({exc})") from None
        if not parts.hostname:
            raise ValueError("names no host")
        if not parts.path.lstrip("/"):
            raise ValueError("names no database (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)")
        return value


class S3Target(_Strict):
    """An S3-compatible endpoint (AWS, MinIO, moto)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None


class Buckets(_Strict):
    data: tuple[str, ...] = ("spark-data", "spark-output-data")
    backups: str = "spark-backups"
    dr_suffix: str = "-dr"


class MetastoreSettings(_Strict):
    database: str = "metastore"
    location_allow_list: tuple[str, ...] = ("s3a://",)
    backup_prefix: str = "hive-metastore/"


class InventorySettings(_Strict):
    """Where S3 Inventory delivers the data bucket's reports (its destination)."""

    bucket: str
    prefix: str = ""
    config_id: str
    #: the oldest report that still vouches for the data (default: the RPO of
    #: [objectives.s3_archive_restore], what the lake is verified against)
    max_age_seconds: float | None = Field(default=None, gt=0)


class SparkVerificationSettings(_Strict):
    """verify-data-integrity as a SparkApplication on the Kubernetes platform (the Spark
    operator's CRD), for buckets one process cannot read in a night."""

    #: an image with Spark, Python and drtests installed (and hadoop-aws for s3a://)
    image: str
    #: drtests/objectstore/spark_job.py as the image holds it
    main_application_file: str = "local:///opt/drtests/spark_job.py"
    spark_version: str = "4.0.0"
    service_account: str = "spark"
    executors: int = Field(default=4, ge=1)
    executor_cores: int = Field(default=2, ge=1)
    executor_memory: str = "4g"
    driver_memory: str = "2g"
    partitions: int = Field(default=64, ge=1)
    #: a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for driver and executors
    credentials_secret: str | None = None
    #: where the job reads the expected manifest from and writes its findings (Parquet):
    #: s3a://bucket/prefix/ (in the allow-list), or file:// on a volume both sides mount
    work_uri: str
    timeout_seconds: float = Field(default=3600, gt=0)


class ObjectStoreSettings(_Strict):
    """Where the S3 scenarios act: a table location in the first data bucket by default."""

    scenario_prefix: str = "warehouse/production_critical.db/fact_table/"
    archive_prefix: str = "minio-data/"
    #: S3 Inventory as the listing source of verify-data-integrity (none: ListObjectsV2)
    inventory: InventorySettings | None = None
    #: verify-data-integrity on Spark (none: in this process)
    spark: SparkVerificationSettings | None = None


class Services(_Strict):
    """Workload names from the runbooks; the local platform runs processes under these names."""

    namespace: str = "spark-operations"
    metastore: str = "spark-hive-metastore"
    metastore_dependents: tuple[str, ...] = ("spark-history-server", "jupyter-connect")
    #: the restore procedure's §3 "Stop Airflow" deployments (Airflow 3 adds a DAG processor)
    airflow: tuple[str, ...] = ("airflow-scheduler", "airflow-web", "airflow-worker")
    #: stopped and started with them where the platform has them (Airflow 3's DAG processor,
    #: the triggerer)
    airflow_when_present: tuple[str, ...] = ("airflow-dag-processor", "airflow-triggerer")
    mlflow: str = "mlflow-server"
    ready_timeout_seconds: float = Field(default=300, gt=0)


WorkloadKind = Literal["deployment", "statefulset"]


def _default_kinds() -> dict[str, WorkloadKind]:
    return {"spark-hive-metastore": "statefulset"}


class KubernetesSettings(_Strict):
    """Where the live workloads run. Without kubeconfig and context, ``KUBECONFIG`` or the
    in-cluster service account is used; ``enabled = false`` leaves the live platform out."""

    enabled: bool = True
    kubeconfig: Path | None = None
    context: str | None = None
    #: workload → kind; the runbooks' metastore is a StatefulSet, the others Deployments
    kinds: dict[str, WorkloadKind] = Field(default_factory=_default_kinds)
    spark_application_selector: str = "environment=production"
    #: the test SparkApplication (YAML or JSON) run after a restore; none: the step is skipped
    test_job_manifest: Path | None = None

    def test_job(self) -> dict[str, Any] | None:
        if self.test_job_manifest is None:
            return None
        import yaml

        try:
            data = yaml.safe_load(self.test_job_manifest.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ProfileError(f"[kubernetes] test_job_manifest: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != "SparkApplication":
            raise ProfileError(
                f"[kubernetes] test_job_manifest {self.test_job_manifest}: not a SparkApplication"
            )
        return data

    def workloads(self, services: Services) -> dict[str, str]:
        names = (
            services.metastore,
            *services.metastore_dependents,
            *services.airflow,
            *services.airflow_when_present,
            services.mlflow,
        )
        return {name: self.kinds.get(name, "deployment") for name in names}


class AirflowSettings(_Strict):
    """Airflow's metadata database (``[postgres.airflow]`` in live mode) and its backups."""

    database: str = "airflow"
    backup_prefix: str = "airflow/"
    #: the DAGs the deployment must load after a restore ("kubectl cp /local/dags/"); the
    #: embedded environment ships its own sample DAGs
    dags_folder: Path | None = None
    #: a DAG triggered after the restart to prove scheduler and workers run tasks; none: skipped
    smoke_dag: str | None = "dr_smoke"
    #: live: the API server's address (its Service, e.g. http://airflow-web.NAMESPACE:8080);
    #: the REST checks and the smoke DAG go through it. None: a port-forward to ``api_port``
    #: of a Ready pod of the ``[services]`` workload ``api_workload``
    api_url: str | None = None
    api_workload: str = "airflow-web"
    api_port: int = Field(default=8080, gt=0, lt=65536)
    #: live: the workload whose pod runs the runbook's ``DagBag()`` (``kubectl exec``)
    scheduler: str = "airflow-scheduler"
    #: live: its container (none: the pod's first) and interpreter
    scheduler_container: str | None = None
    pod_python: str = "python"
    #: live: where ``dags_folder`` is synced in the pod; none: the DAG folder the pod's
    #: Airflow is configured with (``[core] dags_folder``)
    pod_dags_folder: str | None = None


class MlflowSettings(_Strict):
    """MLflow's backend store (``[postgres.mlflow]`` in live mode), its backups and the
    artifact root the server proxies."""

    database: str = "mlflow"
    backup_prefix: str = "mlflow/"
    #: live: the tracking server's address (its Service, e.g. http://mlflow-server.NS:5000).
    #: None: a port-forward to ``tracking_port`` of a Ready pod of ``[services] mlflow``
    tracking_url: str | None = None
    tracking_port: int = Field(default=5000, gt=0, lt=65536)
    artifact_bucket: str = "spark-data"
    artifact_prefix: str = "mlflow-artifacts/"


class ContainerSettings(_Strict):
    """Containers mode (``--dr-env containers``): which images run the services, and how
    long the suite waits for them. Official images by default; a machine without a registry
    names the stand-ins ``drtests containers build`` makes from Debian packages."""

    postgres_image: str = "postgres:17"
    #: moto's server image: the S3 semantics the embedded environment has (versions,
    #: delete markers, checksums, replication settings)
    s3_image: str = "motoserver/moto:5.2.5"
    #: a K3s image (e.g. "rancher/k3s:v1.31.4-k3s1") for the scenarios that need a real
    #: Kubernetes API; without one those scenarios are skipped and say so
    k3s_image: str | None = None
    #: the engine's API, e.g. "unix:///run/podman/podman.sock" (default: DOCKER_HOST, then
    #: Docker's socket, then Podman)
    docker_host: str | None = None
    ready_timeout_s: float = Field(default=120, gt=0)
    pull_timeout_s: float = Field(default=300, gt=0)

    def images(self) -> list[str]:
        return [self.postgres_image, self.s3_image, *([self.k3s_image] if self.k3s_image else [])]


RestoreTestComponent = Literal["metastore", "airflow", "mlflow", "s3"]
RESTORE_TEST_COMPONENTS = ("metastore", "airflow", "mlflow", "s3")
WINDOW = re.compile(r"^(\d+)([smhdw])$")
WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW_S = 10 * 366 * 86400


def window_seconds(text: str) -> float:
    """``7d``, ``36h``, ``90m``: a window of recovery points, in seconds."""
    match = WINDOW.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a window such as 7d, 36h or 90m")
    seconds = int(match.group(1)) * WINDOW_UNITS[match.group(2)]
    if seconds > MAX_WINDOW_S:
        raise ValueError(f"{text!r} reaches back more than ten years")
    return seconds


class RestoreTestSettings(_Strict):
    """``drtests restore-test``: which recovery points are tried, where they are restored
    (never onto a source), and how the restored copy is compared with its source."""

    components: tuple[RestoreTestComponent, ...] = ("metastore", "airflow", "mlflow", "s3")
    #: ``latest``: the newest recovery point in the window; ``random``: any in the window,
    #: chosen with ``seed`` (a run records the seed it used, so it can be repeated)
    select: Literal["latest", "random"] = "latest"
    window: str = "7d"
    seed: int | None = None
    #: a PostgreSQL server the run may write, e.g. postgresql://USER:PASSWORD@HOST:PORT/postgres;
    #: unset: one the run starts and removes (the embedded PostgreSQL, or a container)
    scratch_dsn: SecretStr | None = None
    #: objects of the newest S3 archive restored and compared with its manifest
    s3_sample: int = Field(default=20, ge=1)
    #: MLflow artifacts downloaded through the restored server and hashed
    artifact_sample: int = Field(default=5, ge=0)
    #: the share of a table's source rows a backup may lack before it is a finding
    max_row_loss: float = Field(default=0.10, ge=0, le=1)

    @field_validator("window")
    @classmethod
    def _is_window(cls, value: str) -> str:
        window_seconds(value)
        return value

    @field_validator("scratch_dsn")
    @classmethod
    def _scratch_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        dsn = value.get_secret_value()
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URI")
        try:
            if not urlsplit(dsn).hostname:
                raise ValueError("names no host")
        except ValueError as exc:
            raise ValueError(f"is not a valid URI ({exc})") from None
        return value


class Safety(_Strict):
    """Destructive actions need the target on ``allow_list`` and ``--dr-allow-destructive``."""

    allow_list: tuple[str, ...] = ()
    production: bool = False
    #: a prefix of the backup bucket that holds no real backup: on a live target, negative
    #: controls write the backups and archives they corrupt there (unset: they are skipped)
    scratch_prefix: str | None = None

    @field_validator("scratch_prefix")
    @classmethod
    def _scratch_is_a_folder(cls, value: str | None) -> str | None:
        if value is not None and not value.strip("/"):
            raise ValueError("must name a folder of the backup bucket, e.g. 'drtests-scratch/'")
        return value


class SeedSettings(_Strict):
    databases: int = Field(default=3, ge=1)
    tables_per_database: int = Field(default=4, ge=2)
    partitions_per_table: int = Field(default=24, ge=1)
    write_objects: bool = True


class ParticipantSetting(_Strict):
    name: str
    role: str


class AttestationSetting(_Strict):
    """A checklist item a person vouches for (stakeholders notified, window approved)."""

    item: str
    by: str
    role: str = ""
    note: str = ""


class HealthThresholds(_Strict):
    """The runbook's alert thresholds: crossing one fails the post-restore health check."""

    p95_latency_seconds: float = Field(default=5.0, gt=0)
    errors_per_minute: float = Field(default=10.0, ge=0)
    connection_pool_ratio: float = Field(default=0.80, gt=0, le=1)
    heap_ratio: float = Field(default=0.85, gt=0, le=1)


class MonitoringSettings(_Strict):
    """Prometheus and Pushgateway, and the expressions the health checks evaluate. The
    defaults are the runbook's; the embedded environment runs its own Prometheus stack."""

    prometheus_url: str | None = None
    pushgateway_url: str | None = None
    job: str = "hive-metastore"
    rate_window: str = "5m"
    heap_used: str = 'sum(jvm_memory_used_bytes{area="heap",job="hive-metastore"})'
    heap_max: str = 'sum(jvm_memory_max_bytes{area="heap",job="hive-metastore"})'
    thresholds: HealthThresholds = HealthThresholds()


class Profile(_Strict):
    name: str
    environment: EnvironmentKind = "local"
    operator: str | None = None
    scope: str = "Hive Metastore restore procedures of the Spark-on-Kubernetes data platform"
    participants: tuple[ParticipantSetting, ...] = ()
    attestations: tuple[AttestationSetting, ...] = ()
    objectives: dict[str, Objective] = Field(default_factory=dict)
    postgres: dict[str, PostgresTarget] = Field(default_factory=dict)
    s3: dict[str, S3Target] = Field(default_factory=dict)
    buckets: Buckets = Buckets()
    metastore: MetastoreSettings = MetastoreSettings()
    objectstore: ObjectStoreSettings = ObjectStoreSettings()
    services: Services = Services()
    safety: Safety = Safety()
    seed: SeedSettings = SeedSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    airflow: AirflowSettings = AirflowSettings()
    mlflow: MlflowSettings = MlflowSettings()
    containers: ContainerSettings = ContainerSettings()
    restore_test: RestoreTestSettings = RestoreTestSettings()
    state_dir: Path = Path(".drtests")

    @model_validator(mode="after")
    def _scratch_apart_from_backups(self) -> Profile:
        """Corrupted copies under a real backup prefix would be listed as the newest
        backups: the scratch prefix shares no folder with them."""
        scratch = self.safety.scratch_prefix
        if scratch is None:
            return self
        folder = scratch.strip("/") + "/"
        for setting, prefix in (
            ("metastore.backup_prefix", self.metastore.backup_prefix),
            ("airflow.backup_prefix", self.airflow.backup_prefix),
            ("mlflow.backup_prefix", self.mlflow.backup_prefix),
            ("objectstore.archive_prefix", self.objectstore.archive_prefix),
        ):
            other = prefix.strip("/") + "/"
            if folder.startswith(other) or other.startswith(folder):
                raise ValueError(
                    f"safety.scratch_prefix {scratch!r} overlaps {setting} {prefix!r}: "
                    "name a folder that holds no real backup"
                )
        return self

    @model_validator(mode="after")
    def _scratch_server_apart_from_sources(self) -> Profile:
        """A restore test writes its scratch server only: never one a source lives on."""
        scratch = self.restore_test.scratch_dsn
        if scratch is None:
            return self
        where = _server_of(scratch.get_secret_value())
        for name, target in self.postgres.items():
            if _same_server(_server_of(target.dsn.get_secret_value()), where):
                raise ValueError(
                    f"restore_test.scratch_dsn is the server of [postgres.{name}]: a restore "
                    "test writes only to a separate scratch server"
                )
        return self

    def objective(self, procedure: str) -> Objective:
        try:
            return self.objectives[procedure]
        except KeyError:
            raise ProfileError(
                f"profile {self.name!r} has no objective for procedure {procedure!r}: "
                f"add [objectives.{procedure}] with rto_seconds and rpo_seconds"
            ) from None

    def fingerprint(self) -> str:
        """SHA-256 of the profile as loaded, secrets included only as their hashes."""
        data = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def secrets(self) -> list[str]:
        """Every secret value in the profile, for redaction of outputs."""
        found: list[str] = []
        for pg in self.postgres.values():
            found.append(pg.dsn.get_secret_value())
            password = _password_of(pg.dsn.get_secret_value())
            if password:
                found.append(password)
        scratch = self.restore_test.scratch_dsn
        if scratch is not None:
            found.append(scratch.get_secret_value())
            password = _password_of(scratch.get_secret_value())
            if password:
                found.append(password)
        for s3 in self.s3.values():
            for secret in (s3.access_key_id, s3.secret_access_key):
                if secret is not None:
                    found.append(secret.get_secret_value())
        # as they appear inside URLs too (a password with @ or % is percent-encoded there)
        found += [quote(s, safe="") for s in found]
        return [s for s in found if s]


def _server_of(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    return ((parts.hostname or "localhost").rstrip(".").lower(), parts.port or 5432)


def _addresses(host: str) -> set[str]:
    """What a host name reaches: its addresses where it resolves (all loopback addresses
    as one), else the name itself."""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        found = {host}
    out = set()
    for address in found:
        try:
            out.add("loopback" if ipaddress.ip_address(address).is_loopback else address)
        except ValueError:
            out.add(address)
    return out


def _same_server(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """The same PostgreSQL server, however each DSN spells it (127.0.0.1 and localhost,
    a name and its address)."""
    return a[1] == b[1] and (a[0] == b[0] or bool(_addresses(a[0]) & _addresses(b[0])))


def _password_of(dsn: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(dsn).password
    except ValueError:
        return None


# Objectives from the runbooks: HMS full restore "15-30 minutes", RPO "1 hour"; S3 data
# restore "1-4 hours". S3 RPOs: a version restore loses nothing, the archive is daily, the DR
# copy is kept within the hour.
DEFAULT_OBJECTIVES = {
    "hms_full_restore": Objective(rto_seconds=30 * 60, rpo_seconds=60 * 60),
    # Option 2, Selective Table Recovery: "5-10 minutes per table"; the table's own changes
    # since the backup are what it may lose
    "hms_selective_restore": Objective(rto_seconds=10 * 60, rpo_seconds=60 * 60),
    # Option 4, Point-in-Time Recovery: "30-45 minutes", "Data since restore point"
    "hms_pitr": Objective(rto_seconds=45 * 60, rpo_seconds=60 * 60),
    # Option 3, Metadata Repair: "10-15 minutes", "Data loss: None"
    "hms_metadata_repair": Objective(rto_seconds=15 * 60, rpo_seconds=0),
    # the Rollback Procedure returns to the state before the restore: nothing may be lost
    "hms_rollback": Objective(rto_seconds=30 * 60, rpo_seconds=0),
    "s3_version_restore": Objective(rto_seconds=4 * 3600, rpo_seconds=0),
    "s3_archive_restore": Objective(rto_seconds=4 * 3600, rpo_seconds=24 * 3600),
    "s3_dr_restore": Objective(rto_seconds=4 * 3600, rpo_seconds=3600),
    # a killed pod: Kubernetes reschedules it within minutes; committed data must survive
    "pod_recovery": Objective(rto_seconds=5 * 60, rpo_seconds=0),
    # readiness: a full restore started now would meet its objectives; the RPO achieved is
    # the age of the newest verified backup
    "dr_readiness": Objective(rto_seconds=30 * 60, rpo_seconds=60 * 60),
    # §3 Airflow Metadata Restore "15-30 minutes", §4 MLflow Restore "10-20 minutes"; both
    # restore the newest backup, so what they may lose is the backup interval
    "airflow_restore": Objective(rto_seconds=30 * 60, rpo_seconds=60 * 60),
    "mlflow_restore": Objective(rto_seconds=20 * 60, rpo_seconds=60 * 60),
    # MLflow's artifacts deleted from S3: object versions bring them back, nothing lost
    "mlflow_artifact_restore": Objective(rto_seconds=20 * 60, rpo_seconds=0),
    # restore tests of the real backups: the restore each would be part of, and the backup
    # interval as the data age a restore would lose
    "restore_test_metastore": Objective(rto_seconds=30 * 60, rpo_seconds=60 * 60),
    "restore_test_airflow": Objective(rto_seconds=30 * 60, rpo_seconds=60 * 60),
    "restore_test_mlflow": Objective(rto_seconds=20 * 60, rpo_seconds=60 * 60),
    "restore_test_s3": Objective(rto_seconds=4 * 3600, rpo_seconds=24 * 3600),
}


def local_profile() -> Profile:
    """The built-in profile of the embedded environment."""
    return Profile(
        name="local",
        environment="local",
        objectives=dict(DEFAULT_OBJECTIVES),
        # locally the LocalExecutor's workers run inside the scheduler's process tree
        services=Services(airflow=("airflow-scheduler", "airflow-web", "airflow-dag-processor")),
        # the local metastore service is not a JVM: its memory against its budget
        monitoring=MonitoringSettings(
            rate_window="30s",  # the local Prometheus compresses time; see monitoring.stack
            heap_used='sum(process_resident_memory_bytes{job="hive-metastore"})',
            heap_max='sum(hive_metastore_memory_budget_bytes{job="hive-metastore"})',
        ),
    )


def load_profile(path: Path | None, environment: EnvironmentKind | None = None) -> Profile:
    """Load and validate a profile file, or return the built-in local profile."""
    profile = local_profile() if path is None else _read_profile_file(path)
    if environment is not None and environment != profile.environment:
        profile = profile.model_copy(update={"environment": environment})
    if profile.environment == "live":
        _require_live_targets(profile, str(path) if path else repr(profile.name))
    return profile


def _read_profile_file(path: Path) -> Profile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"profile {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path}: not valid TOML ({exc})") from None
    raw.setdefault("name", path.stem)
    objectives = {k: v.model_dump() for k, v in DEFAULT_OBJECTIVES.items()}
    objectives.update(raw.get("objectives", {}))
    raw["objectives"] = objectives
    if raw.get("environment", "local") != "live":
        # an environment this run creates runs the embedded services: the file adjusts
        # the built-in profile of those rather than starting from nothing
        raw = _merged(local_profile().model_dump(exclude={"name"}), raw)
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        # a check across sections names its settings itself
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProfileError(
            f"profile {path}: {where + ': ' if where else ''}{message}{more}"
        ) from None


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _require_live_targets(profile: Profile, source: str) -> None:
    if "metastore" not in profile.postgres:
        raise ProfileError(
            f"profile {source}: live mode needs [postgres.metastore] dsn = 'postgresql://…'"
        )
    if "primary" not in profile.s3:
        raise ProfileError(f"profile {source}: live mode needs [s3.primary]")
