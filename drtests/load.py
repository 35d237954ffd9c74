"""A busy machine on purpose: the game day's load mode (``--dr-load``).

Shared CI runners and the hosts of real game days are busy. Load mode reproduces that, so
that "slow is not broken" is tested, not hoped for: one busy process per core (bounded in
time, stopped by the run) and a slow network in front of the HTTP services the suite talks
to (a loopback TCP proxy that holds each response back for a few seconds). Scenarios must
still pass and negative controls must still hold: slowness may not turn a failure into a
pass or a pass into a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from drtests.processes import dying_with_parent

#: the longest a CPU hog runs, whatever happens to the run that started it
HOG_LIMIT_S = 4 * 3600
_HOG = (
    "import time\n"
    f"end = time.monotonic() + {HOG_LIMIT_S}\n"
    "while time.monotonic() < end:\n"
    "    sum(range(10000))\n"
)


class CpuHog:
    """One busy process per core, at normal priority, until ``stop`` (or HOG_LIMIT_S)."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for _ in range(self.processes):
            self._procs.append(
                subprocess.Popen(
                    # named with the run's pid, so that what it left behind can be found
                    dying_with_parent(
                        [sys.executable, "-c", _HOG, "drtests-cpu-hog", str(os.getpid())]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in self._procs:
            proc.wait()
        self._procs.clear()


class SlowProxy:
    """A loopback TCP proxy to ``target`` that holds back each response ``delay_s``: the
    first bytes answering a request wait, the rest of that answer streams."""

    def __init__(self, target: tuple[str, int], delay_s: float) -> None:
        self.target = target
        self.delay_s = delay_s
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name=f"slow-proxy:{self.port}").start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()  # as the service itself would: refused
            return
        upstream.settimeout(None)
        asked = threading.Event()

        def requests() -> None:
            with contextlib.suppress(OSError):
                while chunk := client.recv(65536):
                    asked.set()
                    upstream.sendall(chunk)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

        def responses() -> None:
            with contextlib.suppress(OSError):
                while chunk := upstream.recv(65536):
                    if asked.is_set():
                        asked.clear()
                        time.sleep(self.delay_s)
                    client.sendall(chunk)
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=requests, daemon=True)
        sender.start()
        responses()
        sender.join(timeout=1)
        client.close()
        upstream.close()

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()


class SlowNetwork:
    """A SlowProxy per loopback service, made when a client first asks for it."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._proxies: dict[tuple[str, int], SlowProxy] = {}
        self._lock = threading.Lock()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            return url
        target = (parts.hostname, parts.port or 80)
        with self._lock:
            proxy = self._proxies.get(target)
            if proxy is None:
                proxy = self._proxies[target] = SlowProxy(target, self.delay_s)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))

    def stop(self) -> None:
        with self._lock:
            for proxy in self._proxies.values():
                proxy.stop()
            self._proxies.clear()


_network: SlowNetwork | None = None


def slow_network(delay_s: float | None) -> None:
    """Put (or, with None, take away) the slow network in front of every loopback HTTP
    service the suite's clients call."""
    global _network
    if _network is not None:
        _network.stop()
    _network = SlowNetwork(delay_s) if delay_s else None


def client_url(url: str) -> str:
    """The URL a client of the suite uses: through the slow network in load mode."""
    return _network.url(url) if _network is not None else url
