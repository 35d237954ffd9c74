"""JSON over HTTP for the services' REST APIs (Airflow, MLflow, Prometheus): one place that
turns connection failures and error responses into one clear line, and that tells slow
from broken.

A request that times out, a connection refused or reset while a service restarts, and a
502/503/504 from a proxy in front of it are transient: with a deadline they are retried,
with a growing pause, until the deadline of the step that asked. One slow answer on a busy
machine must not end a step whose deadline is minutes away.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from drtests import patience
from drtests.errors import EnvironmentUnavailable
from drtests.load import client_url

T = TypeVar("T")
RETRIED_STATUSES = frozenset({502, 503, 504})
FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 5.0
#: a retry that would have less time than this before the deadline is not started
MIN_ATTEMPT_S = 0.2


class HTTPStatusError(EnvironmentUnavailable):
    """The service answered with an error status (kept so callers can tell 404 or 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def timed_out(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return timed_out(exc.reason)
    return isinstance(exc, TimeoutError | socket.timeout)


def transient(exc: BaseException) -> bool:
    """A failure that a later attempt may not meet: slow, restarting or overloaded."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in RETRIED_STATUSES
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return transient(exc.reason)
    return isinstance(
        exc,
        TimeoutError
        | socket.timeout
        | ConnectionRefusedError
        | ConnectionResetError
        | ConnectionAbortedError
        | http.client.RemoteDisconnected
        | http.client.IncompleteRead,
    )


def retry_transient(
    attempt: Callable[[float], T],
    timeout: float,
    deadline: float | None,
    retry_if: Callable[[BaseException], bool] = transient,
) -> T:
    """Call ``attempt(per_attempt_timeout)`` until it succeeds, a failure is not to be
    retried, or the monotonic ``deadline`` passes (None: one attempt); the last failure
    propagates."""
    pause = FIRST_PAUSE_S
    first = True
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        # the first attempt gets its full bound; later ones no more than the time left
        per_attempt = timeout if first or remaining is None else min(timeout, remaining)
        first = False
        began = time.monotonic()
        try:
            result = attempt(per_attempt)
        except Exception as exc:
            patience.record(slow=timed_out(exc) or time.monotonic() - began > patience.SLOW_S)
            left = None if deadline is None else deadline - time.monotonic()
            if left is None or left <= MIN_ATTEMPT_S + min(pause, left) or not retry_if(exc):
                raise
        else:
            patience.record(slow=time.monotonic() - began > patience.SLOW_S)
            return result
        patience.record(retried=True)
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_S)


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    what: str,
    timeout: float = 10.0,
    retry_until: float | None = None,
) -> Any:
    """Send ``body`` as JSON, return the decoded answer; errors name ``what`` was asked.

    With ``retry_until`` (a ``time.monotonic()`` deadline) transient failures are retried
    until then; callers pass it only for requests that may be sent twice."""
    url = client_url(url)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"

    attempts = 0

    def attempt(per_attempt: float) -> bytes:
        nonlocal attempts
        attempts += 1
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=per_attempt) as resp:  # noqa: S310
            raw: bytes = resp.read()
            return raw

    started = time.monotonic()
    try:
        raw = retry_transient(attempt, timeout, retry_until)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise HTTPStatusError(
            f"{what}: HTTP {exc.code} {detail}{_tries(attempts, started)}", exc.code
        ) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if timed_out(exc):
            problem = f"no answer within {timeout:g}s"
        elif isinstance(exc, http.client.IncompleteRead):
            problem = f"answer cut off ({_reason(exc)})"
        else:
            problem = f"unreachable ({_reason(exc)})"
        raise NoAnswer(f"{what}: {url} {problem}{_tries(attempts, started)}") from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise EnvironmentUnavailable(f"{what}: not JSON: {raw[:200]!r}") from None


class NoAnswer(EnvironmentUnavailable):
    """The service did not answer (refused, timed out, cut off) within the deadline, as
    opposed to answering with an error."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _tries(attempts: int, started: float) -> str:
    """The suffix ", after N attempts over S s" when the request was retried."""
    if attempts == 1:
        return ""
    return f", after {attempts} attempts over {time.monotonic() - started:.0f}s"
