"""Nothing the run starts outlives it: not after Ctrl-C, not after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int, cmdline: str) -> bool:
    try:
        now = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return now == cmdline


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_servers_die_with_the_run(sig: signal.Signals, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "drtests/scenarios",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "full_restore_from_backup and sequence",
            "--dr-report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        children: dict[int, str] = {}
        while time.monotonic() < deadline:
            children = _children(run.pid)
            if sum("moto.server" in c for c in children.values()) == 2 and any(
                "postgres" in c for c in children.values()
            ):
                break
            time.sleep(0.1)
        assert children, "the run started no server"
        run.send_signal(sig)
        run.wait(timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p, c) for p, c in children.items()):
            time.sleep(0.1)
        assert not [c for p, c in children.items() if _alive(p, c)]
    finally:
        if run.poll() is None:
            run.kill()


def test_kill_takes_the_whole_process_tree(tmp_path: Path) -> None:
    """A pod kill: the workload's children go with it (a postmaster's backends would
    otherwise keep its shared memory and block the restart)."""
    from drtests.processes import ManagedProcess, descendants

    process = ManagedProcess(
        "tree", ["sh", "-c", "sleep 300 & sleep 300 & wait"], tmp_path / "tree.log"
    )
    process.start()
    assert process.pid is not None
    deadline = time.monotonic() + 10
    while len(descendants(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = descendants(process.pid)
    assert len(children) == 2
    process.kill()
    for pid in children:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_supervisor_restarts_a_killed_workload_and_measures_it(tmp_path: Path) -> None:
    from drtests.platform.local import LocalPlatform
    from drtests.processes import ManagedProcess

    platform = LocalPlatform(tmp_path)
    process = ManagedProcess("sleeper", ["sleep", "300"], tmp_path / "sleeper.log")
    platform.add_process("sleeper", process, process.running)
    platform.scale("sleeper", 1)
    first = process.pid
    try:
        recovery = platform.kill_and_measure("sleeper", timeout=10)
        assert process.pid != first and process.running()
        assert 0 <= recovery.rescheduled_s <= recovery.ready_s < 10
        # the replacement outlives the end of supervision (its death signal follows the
        # thread that started it)
        platform.stop_supervising()
        time.sleep(0.5)
        assert process.running()
    finally:
        platform.stop_all()
    assert not process.running()


SERVER = (
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "time.sleep(60)\n"
)


def test_a_server_whose_port_was_taken_is_started_again_on_another(tmp_path: Path) -> None:
    """Between choosing a free port and the server binding it, something else took it: the
    server is given another port and started again, within the same readiness wait."""
    import socket

    from drtests.processes import ManagedProcess, free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: only the bind fails
        ports = [taken.getsockname()[1]]
        process = ManagedProcess(
            "server", [sys.executable, "-c", SERVER, str(ports[0])], tmp_path / "server.log"
        )

        def rebind() -> list[str]:
            ports.append(free_port())
            return [*process.argv[:-1], str(ports[-1])]

        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", ports[-1])) == 0

        process.rebind = rebind
        process.start()
        try:
            process.wait_ready(answers, timeout=20)
        finally:
            process.stop()
    assert len(ports) == 2, ports
    assert "Address already in use" in (tmp_path / "server.log").read_text()


#: a server that, asked to stop, forks a worker that ignores the stop signal, and exits
FORKS_WHILE_STOPPING = """
import os, signal, sys, time
def stop(*_):
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stdout.write(f"worker {os.getpid()}\\n"); sys.stdout.flush()
        time.sleep(120)
        os._exit(0)
    time.sleep(0.5)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_child_forked_while_stopping_ends_with_its_process(tmp_path: Path) -> None:
    """An Airflow scheduler's task runner forked during its shutdown once outlived the
    test run (orphaned to init, missed by the list of descendants taken before the stop)."""
    from drtests.processes import ManagedProcess

    log = tmp_path / "server.log"
    server = ManagedProcess("server", [sys.executable, "-c", FORKS_WHILE_STOPPING], log)
    server.start()
    server.wait_ready(lambda: "ready" in log.read_text(), timeout=30)
    server.stop(timeout=10)
    worker = int(log.read_text().split("worker ")[1].split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _gone(worker):
        time.sleep(0.1)
    assert _gone(worker), "the worker outlived its server"


def _gone(pid: int) -> bool:
    """Exited (a zombie only waits for init to reap it)."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


#: a runner that starts a long sleep the way the suite starts its servers, then waits
RUNNER = """
import subprocess, sys, time
from drtests.processes import dying_with_parent
child = subprocess.Popen(dying_with_parent(["/bin/sleep", "120"]))
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("path", [os.environ.get("PATH", ""), ""], ids=["setpriv", "shim"])
def test_a_server_dies_with_a_runner_killed_by_kill_9(path: str) -> None:
    """PR_SET_PDEATHSIG set by an exec wrapper (no Python between fork and exec, which can
    deadlock in a runner with threads): util-linux's setpriv, or the shim without it."""
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, env=env, text=True
    )
    assert runner.stdout is not None
    child = int(runner.stdout.readline())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}/comm").read_text().strip() != "sleep":  # the wrapper exec'd
        assert time.monotonic() < deadline, "the wrapper never became the command"
        time.sleep(0.01)
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _gone(child):
        time.sleep(0.05)
    assert _gone(child), "the server outlived its runner"
