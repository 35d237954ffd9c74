"""``drtests doctor``: before a game day, is this platform ready to be exercised? Every
endpoint answers with the permissions the procedures need, backups are fresh enough for the
RPO and verify, monitoring is in place. One named check per line, then GO or NO-GO."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from drtests.backups import BackupCatalog
from drtests.config import KubernetesSettings, Profile
from drtests.environments import Environment
from drtests.errors import DRError
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.postgres import connect
from drtests.readiness import alert_rules_loaded, backups_ready, jobs_healthy
from drtests.results import CheckResult, Finding


def _postgres(env: Environment) -> CheckResult:
    """The metastore's server answers, and its role may create the staging database a
    restore swaps in (CREATEDB or superuser)."""
    result = CheckResult("postgres_ready", "metastore PostgreSQL answers; role may CREATE DATABASE")
    where = env.pg_target(env.metastore_database)
    try:
        with connect(env.postgres, env.metastore_database) as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except DRError as exc:
        result.error = str(exc)
        return result
    if not (row and row[0]):
        result.findings.append(
            Finding(result.name, "error", where, "role lacks CREATEDB: restores cannot stage")
        )
    return result


def _buckets(env: Environment, profile: Profile) -> CheckResult:
    result = CheckResult("s3_ready", "data and backup buckets answer; data buckets versioned")
    client = env.s3_primary.client()
    for bucket in (*profile.buckets.data, profile.buckets.backups):
        try:
            client.head_bucket(Bucket=bucket)
            versioning = client.get_bucket_versioning(Bucket=bucket).get("Status")
        except (BotoCoreError, ClientError) as exc:
            detail = str(exc).splitlines()[0]
            result.findings.append(Finding(result.name, "error", f"s3://{bucket}", detail))
            continue
        if bucket in profile.buckets.data and versioning != "Enabled":
            result.findings.append(
                Finding(
                    result.name,
                    "error",
                    f"s3://{bucket}",
                    "versioning not enabled: Option A (version restore) impossible",
                )
            )
    return result


def kubernetes_configured(settings: KubernetesSettings) -> bool:
    """Wherever the game day would connect: a kubeconfig or context in the profile,
    KUBECONFIG, the in-cluster service account, or ``~/.kube/config``."""
    from drtests.platform.kubernetes import DEFAULT_KUBECONFIG, in_cluster

    if not settings.enabled:
        return False
    return bool(
        settings.kubeconfig
        or settings.context
        or os.environ.get("KUBECONFIG")
        or in_cluster()
        or DEFAULT_KUBECONFIG.expanduser().is_file()
    )


def _kubernetes(profile: Profile, max_age: timedelta, now: datetime) -> list[CheckResult]:
    """Every verb the procedures need, asked of the API server (SelfSubjectAccessReview);
    the daily backup and consistency-check CronJobs exist and last succeeded in time."""
    from drtests.platform.kubernetes import KubernetesPlatform

    def read_only(target: str, action: str) -> None:
        raise DRError(f"doctor changes nothing (asked to {action} on {target})")

    try:
        platform = KubernetesPlatform.connect(
            profile.services.namespace,
            profile.kubernetes.workloads(profile.services),
            read_only,
            kubeconfig=profile.kubernetes.kubeconfig,
            context=profile.kubernetes.context,
        )
    except DRError as exc:
        result = CheckResult("kubernetes_permissions", "Kubernetes API reachable")
        result.error = str(exc)
        return [result]
    results = [platform.access_review(), *jobs_healthy(platform, max_age, now)]
    return results


def _pushgateway(url: str) -> CheckResult:
    result = CheckResult("pushgateway_ready", f"Pushgateway {url} answers")
    if not PrometheusAPI(url, timeout=5).ready():  # the Pushgateway serves /-/ready too
        result.error = f"Pushgateway {url} unreachable"
    return result


def run_doctor(
    profile: Profile, env: Environment, now: datetime | None = None
) -> list[CheckResult]:
    now = now or datetime.now(UTC)
    catalog = BackupCatalog(
        env.s3_primary, profile.buckets.backups, profile.metastore.backup_prefix
    )
    rpo = timedelta(seconds=profile.objective("hms_full_restore").rpo_seconds)
    results = [
        _postgres(env),
        _buckets(env, profile),
        *backups_ready(catalog, env.postgres, rpo, now),
    ]
    if kubernetes_configured(profile.kubernetes):
        results += _kubernetes(profile, rpo, now)
    monitoring = profile.monitoring
    if monitoring.prometheus_url:
        results.append(
            alert_rules_loaded(PrometheusAPI(monitoring.prometheus_url, timeout=5, patience=5))
        )
    if monitoring.pushgateway_url:
        results.append(_pushgateway(monitoring.pushgateway_url))
    return results
