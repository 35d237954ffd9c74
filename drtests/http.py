"""JSON over HTTP for the services' REST APIs (Airflow, MLflow, Prometheus): one place that
turns connection failures and error responses into one clear line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from drtests.errors import EnvironmentUnavailable


def request_json(
    method: str, url: str, body: Any = None, *, what: str, timeout: float = 10.0
) -> Any:
    """Send ``body`` as JSON, return the decoded answer; errors name ``what`` was asked."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise EnvironmentUnavailable(f"{what}: HTTP {exc.code} {detail}") from None
    except (OSError, ValueError) as exc:
        raise EnvironmentUnavailable(f"{what}: {url} unreachable ({exc})") from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise EnvironmentUnavailable(f"{what}: not JSON: {raw[:200]!r}") from None
