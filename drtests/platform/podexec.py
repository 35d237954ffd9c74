"""``kubectl exec`` through the official client: a command run in a pod's container over the
exec API's websocket (``v5.channel.k8s.io``, or ``v4`` from an older API server), its stdin
sent and closed, stdout and stderr collected, the exit code read from the status channel.
One deadline bounds the whole command."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from websocket import WebSocketException

from drtests.errors import EnvironmentUnavailable

STDOUT, STDERR, STATUS = 1, 2, 3
#: a websocket frame of stdin at most this large
CHUNK = 64 * 1024
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")
T = TypeVar("T")


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a pod left: its exit code and its output."""

    pod: str
    container: str | None
    returncode: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self, lines: int = 3) -> str:
        text = self.stderr.decode("utf-8", errors="replace").strip()
        return " | ".join(text.splitlines()[-lines:])


def handshake_status(exc: ApiException) -> int:
    """The HTTP status of a refused exec (the client reports it as status 0 and the
    websocket library's message)."""
    if exc.status:
        return int(exc.status)
    found = _HANDSHAKE.search(str(exc.reason or ""))
    return int(found.group(1)) if found else 0


def refusal(exc: ApiException, subresource: str) -> str:
    """Why the API server refused an exec or port-forward, e.g. "403 Forbidden: this
    identity may not create pods/exec"."""
    status = handshake_status(exc)
    if status == 403:
        return f"403 Forbidden: this identity may not create pods/{subresource}"
    return f"{status or ''} {exc.reason or ''}".strip()


def open_websocket(open_: Callable[[], T]) -> T:
    """Open an exec or port-forward stream; a refused handshake is the ``ApiException`` it
    is (the client fails to decode the body of its own exception and raises an
    AttributeError while handling it)."""
    try:
        return open_()
    except AttributeError as exc:
        if isinstance(exc.__context__, ApiException):
            raise exc.__context__ from None
        raise


def run_in_pod(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    argv: list[str],
    *,
    container: str | None,
    stdin: bytes | None,
    timeout: float,
) -> ExecResult:
    """Run ``argv`` in ``pod`` and wait for it to end; raises ``ApiException`` when the API
    server refuses the exec, ``EnvironmentUnavailable`` when the stream breaks or the
    command outlives ``timeout``."""
    # stream() swaps the request method of the client it is given: a client of its own
    core = client.CoreV1Api(client.ApiClient(api.configuration))
    extra: dict[str, Any] = {"container": container} if container else {}
    ws = open_websocket(
        lambda: stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=argv,
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            binary=True,
            _preload_content=False,
            _request_timeout=min(timeout, 60.0),
            **extra,
        )
    )
    try:
        if stdin is not None:
            for start in range(0, len(stdin), CHUNK):
                ws.write_stdin(stdin[start : start + CHUNK])
            ws.close_channel(0)  # v5: the command sees end of input (v4 cannot say it)
        deadline = time.monotonic() + timeout
        while ws.is_open():
            left = deadline - time.monotonic()
            if left <= 0:
                raise EnvironmentUnavailable(
                    f"{' '.join(argv[:2])} in pod {pod} still running after {timeout:.0f}s"
                )
            ws.update(timeout=min(left, 1.0))
        stdout, stderr = ws.read_channel(STDOUT), ws.read_channel(STDERR)
        status = ws.read_channel(STATUS)
    except (WebSocketException, OSError, ValueError) as exc:
        raise EnvironmentUnavailable(f"exec in pod {pod}: stream broken: {exc}") from None
    finally:
        ws.close()
    return ExecResult(pod, container, _exit_code(pod, status), bytes(stdout), bytes(stderr))


def _exit_code(pod: str, status: bytes | str) -> int:
    """The status channel's ``Status``: Success, or a failure with the exit code as its
    cause; anything else (the container missing, the command not found) is an error."""
    if not status:
        raise EnvironmentUnavailable(f"exec in pod {pod}: the stream ended without an exit status")
    try:
        answer = json.loads(status)
    except ValueError:
        raise EnvironmentUnavailable(f"exec in pod {pod}: unreadable status {status!r}") from None
    if answer.get("status") == "Success":
        return 0
    if answer.get("reason") == "NonZeroExitCode":
        for cause in answer.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause.get("message", 1))
    raise EnvironmentUnavailable(f"exec in pod {pod}: {answer.get('message') or answer}")
