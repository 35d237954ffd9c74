"""Post-restore health from Prometheus: the runbook's dashboard expressions, evaluated by
a real Prometheus and held against the runbook's alert thresholds (profile settings)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from drtests.config import MonitoringSettings
from drtests.errors import EnvironmentUnavailable
from drtests.http import NoAnswer
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.results import CheckResult, Finding


@dataclass(frozen=True)
class HealthQuery:
    name: str
    description: str
    expr: str
    limit: float
    above_is_bad: bool = True


def health_queries(settings: MonitoringSettings) -> list[HealthQuery]:
    job, window, t = settings.job, settings.rate_window, settings.thresholds
    sel = f'{{job="{job}"}}'
    return [
        HealthQuery("health_service_up", f"up{sel} is 1", f"up{sel}", 1.0, above_is_bad=False),
        HealthQuery(
            "health_database_up", "the metastore's PostgreSQL answers (pg_up)", "pg_up", 1.0, False
        ),
        HealthQuery(
            "health_error_rate",
            f"operation errors per minute ≤ {t.errors_per_minute:g}",
            f"sum(rate(hive_metastore_operation_errors_total{sel}[{window}])) * 60",
            t.errors_per_minute,
        ),
        HealthQuery(
            "health_p95_latency",
            f"p95 operation latency ≤ {t.p95_latency_seconds:g} s",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(hive_metastore_operation_latency_seconds_bucket{sel}[{window}])))",
            t.p95_latency_seconds,
        ),
        HealthQuery(
            "health_connection_pool",
            f"connection pool use ≤ {t.connection_pool_ratio:.0%}",
            f"sum(hive_metastore_connection_pool_active{sel}) / "
            f"sum(hive_metastore_connection_pool_max{sel})",
            t.connection_pool_ratio,
        ),
        HealthQuery(
            "health_heap",
            f"heap use ≤ {t.heap_ratio:.0%}",
            f"({settings.heap_used}) / ({settings.heap_max})",
            t.heap_ratio,
        ),
    ]


def check_health(
    api: PrometheusAPI, settings: MonitoringSettings, wait_for_data: float = 0.0
) -> list[CheckResult]:
    """One named result per expression; no data for an expression is a failure (a metric
    that is not scraped cannot show health), NaN (no operations in the window) is not.
    ``wait_for_data`` gives fresh scrapes (a service just restarted) time to arrive."""
    results = []
    unreachable: str | None = None  # once Prometheus did not answer within its patience
    for query in health_queries(settings):
        result = CheckResult(query.name, query.description)
        if unreachable is not None:
            result.error = unreachable
            results.append(result)
            continue
        try:
            samples = api.wait_for(query.expr, timeout=wait_for_data)
        except EnvironmentUnavailable as exc:
            result.error = f"cannot run: {exc}"
            if isinstance(exc, NoAnswer):
                unreachable = result.error
            results.append(result)
            continue
        if not samples:
            result.findings.append(
                Finding(query.name, "error", query.expr, "no data: the metric is not scraped")
            )
        for sample in samples:
            value = sample.value
            if math.isnan(value):
                continue
            bad = value > query.limit if query.above_is_bad else value < query.limit
            if bad:
                subject = sample.labels.get("instance") or query.expr
                result.findings.append(
                    Finding(
                        query.name, "error", subject, f"{value:.3g} against limit {query.limit:g}"
                    )
                )
        results.append(result)
    return results
