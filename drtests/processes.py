"""Local server processes that can never outlive the run.

Every child is started with ``PR_SET_PDEATHSIG`` so it dies with the runner, even after
``kill -9`` of pytest; :meth:`ManagedProcess.stop` is the clean path used by finalizers.
The signal is set by an exec wrapper (util-linux's ``setpriv``), not by a ``preexec_fn``:
Python code run between fork and exec in a process with other threads can deadlock, and
one did, leaving ``Popen`` waiting for a child that never ran its command.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from drtests import patience
from drtests.errors import EnvironmentUnavailable

#: sets PR_SET_PDEATHSIG, then becomes the command (where setpriv is missing)
_PDEATHSIG_SHIM = (
    "import ctypes, os, sys; ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[1])); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def dying_with_parent(argv: Sequence[str], sig: int = signal.SIGKILL) -> list[str]:
    """``argv`` run so that it receives ``sig`` when the thread that started it ends (the
    runner's death included): ``setpriv --pdeathsig``, which then execs the command under
    the same pid."""
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, "--pdeathsig", signal.Signals(sig).name, "--", *argv]
    return [sys.executable, "-c", _PDEATHSIG_SHIM, str(int(sig)), *argv]


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux: 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port for a server this run starts, checked free. Drawn below the ephemeral range:
    a port from that range may be taken by any outgoing connection's local end between the
    pick and the server's bind ("address already in use" at start-up)."""
    low = _ephemeral_low()
    first = max(1024, low - 12000)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        for _ in range(200):
            port = random.randrange(first, low)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
        sock.bind((host, 0))  # a crowded range: any free port rather than none
        fallback: int = sock.getsockname()[1]
        return fallback


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 10) -> bool:
    """A readiness probe: the URL answers 200 (loopback services only)."""
    from drtests.load import client_url

    try:
        with urllib.request.urlopen(client_url(url), timeout=timeout) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


_waits = threading.local()


def time_left() -> float | None:
    """Seconds left before the deadline of the ``wait_until`` running in this thread."""
    deadline: float | None = getattr(_waits, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


def growing(probe: Callable[[float], bool], first: float, most: float) -> Callable[[], bool]:
    """A readiness probe that gives a slow service longer on each try: its per-try timeout
    starts at ``first`` and doubles, up to ``most``, after every try that used it up. A
    service that answers only after ``first`` is found ready before the wait's deadline
    instead of being timed out forever; one that refuses is asked again at once. A try
    never outlasts the deadline of the wait it runs in."""
    timeout = first
    timed_out = False

    def attempt() -> bool:
        nonlocal timeout, timed_out
        if timed_out:
            patience.record(retried=True)  # asked again after a try that timed out
        left = time_left()
        this_try = timeout if left is None else min(timeout, max(0.5, left))
        start = time.monotonic()
        if probe(this_try):
            return True
        timed_out = time.monotonic() - start >= 0.9 * this_try
        if timed_out:
            patience.record(slow=True)
            timeout = min(most, timeout * 2)
        return False

    return attempt


def wait_until(
    probe: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll ``probe`` until it is true; return seconds waited or raise a clear error. A
    probe made by ``growing`` keeps each try within this wait's deadline."""
    start = time.monotonic()
    outer = getattr(_waits, "deadline", None)
    _waits.deadline = start + timeout if outer is None else min(outer, start + timeout)
    tries = 0
    try:
        while True:
            tries += 1
            if probe():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                took = time.monotonic() - start
                raise EnvironmentUnavailable(
                    f"{what} not ready after {timeout:.0f}s ({tries} tries over {took:.0f}s)"
                )
            time.sleep(interval)
    finally:
        _waits.deadline = outer


class Supervised(Protocol):
    """What a supervisor does with a workload's runtime: a local process tree, or a
    container."""

    @property
    def log_name(self) -> str: ...

    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30) -> float: ...

    def log_tail(self, lines: int = 3) -> str: ...


#: what servers print when their port is taken (Java, PostgreSQL, Python)
BIND_FAILURES = ("Address already in use", "BindException", "could not bind")
REBINDS = 3


class ManagedProcess:
    """A child process with a log file, a readiness probe, kill -9 and clean stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        death_signal: int = signal.SIGKILL,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.user = user
        self.env = env
        self.death_signal = death_signal
        self.stop_signal = stop_signal
        self._proc: subprocess.Popen[bytes] | None = None
        #: a new argv on a new port, for a server whose port was taken before it bound it
        self.rebind: Callable[[], list[str]] | None = None
        #: wall-clock time of the last start, for probes that compare with heartbeats
        self.started_at: float | None = None

    @property
    def log_name(self) -> str:
        return self.log_path.name

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                dying_with_parent(self.argv, self.death_signal),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                env=self.env,
                # a process group of its own: what it forks (Airflow's task runners and
                # executors, a server's workers) ends with it, whenever it was forked
                start_new_session=True,
            )

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30) -> float:
        """Wait until ``probe`` answers. A server that lost its port between choosing and
        binding ("address already in use") is given a new one by ``rebind`` and started
        again, up to REBINDS times, within the same timeout."""
        rebinds = 0
        seen = self._log_size()

        def ready() -> bool:
            nonlocal rebinds, seen
            if not self.running():
                lost_port = any(m in self._log_since(seen) for m in BIND_FAILURES)
                if lost_port and self.rebind is not None and rebinds < REBINDS:
                    rebinds += 1
                    self.argv = self.rebind()
                    seen = self._log_size()
                    self.start()
                    return False
                raise EnvironmentUnavailable(
                    f"{self.name} exited during start-up; see {self.log_path}: {self.log_tail()}"
                )
            return probe()

        return wait_until(ready, timeout, self.name)

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9 of the process and everything it started, as a pod kill would (a
        PostgreSQL postmaster's backends would otherwise hold its shared memory)."""
        if self._proc is not None and self._proc.poll() is None:
            tree = [self._proc.pid, *descendants(self._proc.pid)]
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._end_group()
            self._proc.wait()
            wait_until(lambda: not any(_alive(pid) for pid in tree[1:]), 10, "killed processes")

    def stop(self, timeout: float = 15) -> None:
        """The stop signal, then kill -9 after ``timeout``; children the process left
        behind (a server's workers) are killed too, as a pod's end takes its containers."""
        if self._proc is None:
            return
        if self._proc.poll() is not None:
            self._end_group()  # it ended by itself: what it forked may not have
            return
        tree = descendants(self._proc.pid)
        self._proc.send_signal(self.stop_signal)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._end_group()

    def _end_group(self) -> None:
        """kill -9 of what is left of the process's group: children forked after the
        descendants were listed (during its shutdown) and orphaned since."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ensure_system_user(name: str) -> str:
    """Create the unprivileged system user PostgreSQL runs as when we are root."""
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


def is_root() -> bool:
    return os.geteuid() == 0
