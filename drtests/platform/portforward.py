"""``kubectl port-forward`` through the official client, for a game day run from outside the
cluster: a listener on 127.0.0.1 whose every connection is carried over the pods/portforward
websocket to the remote port of a Ready pod of one workload.

Unlike ``kubectl port-forward deployment/NAME``, which binds to the pod it found first and
breaks when that pod goes, the pod is chosen per connection: a restore that scales the
workload to 0 and back is still reachable through the same local address afterwards.
Nothing is opened towards the cluster until a connection comes in, so a dry run that never
calls the service never forwards anything.
"""

from __future__ import annotations

import logging
import select
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward

from drtests.errors import EnvironmentUnavailable
from drtests.platform.podexec import open_websocket, refusal

log = logging.getLogger(__name__)
#: a forwarded connection with no traffic either way for this long is closed
IDLE_TIMEOUT_S = 300.0
CHUNK = 64 * 1024


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class PodPortForward:
    """Connections to ``url`` reach ``remote_port`` of a Ready pod that ``choose_pod``
    names (called per connection). Its own API client: the client library's websocket
    calls swap the request method of the client they use, which must not be one other
    threads send requests through."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        choose_pod: Callable[[client.CoreV1Api], str],
        remote_port: int,
        what: str,
        timeout: float,
    ) -> None:
        self.core = client.CoreV1Api(client.ApiClient(api.configuration))
        self.namespace = namespace
        self.choose_pod = choose_pod
        self.remote_port = remote_port
        self.what = what
        self.timeout = timeout
        #: connections carried, and why the last one that failed did
        self.connections = 0
        self.last_error: str | None = None
        self._open_lock = threading.Lock()
        forward = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                forward._carry(self.request)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"port-forward {what}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _open(self) -> tuple[str, Any]:
        """A Ready pod and the forwarding websocket to it (one at a time: see the class)."""
        with self._open_lock:
            pod = self.choose_pod(self.core)
            try:
                stream = open_websocket(
                    lambda: portforward(
                        self.core.connect_get_namespaced_pod_portforward,
                        pod,
                        self.namespace,
                        ports=str(self.remote_port),
                        _request_timeout=self.timeout,
                    )
                )
            except ApiException as exc:
                raise EnvironmentUnavailable(
                    f"Kubernetes port-forward to {self.namespace}/{pod}:{self.remote_port}: "
                    f"{refusal(exc, 'portforward')}"
                ) from None
            self.connections += 1
            return pod, stream

    def _carry(self, local: socket.socket) -> None:
        try:
            pod, stream = self._open()
        except EnvironmentUnavailable as exc:
            self._failed(str(exc))
            return  # the caller's connection closes unanswered: its retries take over
        remote = stream.socket(self.remote_port)
        try:
            _pump(local, remote)
        finally:
            remote.close()
        error = stream.error(self.remote_port)
        if error:
            self._failed(f"port-forward to {pod}:{self.remote_port}: {error.strip()}")

    def _failed(self, reason: str) -> None:
        """Kept for the caller and logged once per reason, as kubectl prints it: the
        service's client only sees a connection closed unanswered."""
        if reason != self.last_error:
            log.warning("%s: %s", self.what, reason)
        self.last_error = reason

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> PodPortForward:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _pump(local: socket.socket, remote: Any) -> None:
    """Bytes both ways until either side ends or the connection idles out."""
    peers = {local.fileno(): remote, remote.fileno(): local}
    while True:
        ready, _, _ = select.select([local, remote], [], [], IDLE_TIMEOUT_S)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(CHUNK)
            except OSError:
                return
            if not data:
                return
            try:
                peers[sock.fileno()].sendall(data)
            except OSError:
                return
