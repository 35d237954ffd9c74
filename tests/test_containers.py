"""Containers mode's bad input, against the real engine: no engine, an engine that does not
answer, an image that is not there, a container that never becomes ready or exits — each
one line within a bounded wait, and nothing left on the engine. Leftovers of a killed run
are removed by the next."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtests.config import ContainerSettings, Profile, load_profile, local_profile
from drtests.containers.engine import DOCKER_SOCKET, ContainerEngine, find_engine
from drtests.containers.images import BASE_IMAGE, RECIPES
from drtests.containers.workload import (
    OWNER_LABEL,
    ContainerWorkload,
    remove_leftovers,
    run_labels,
)
from drtests.environments.containers import containers_environment
from drtests.errors import EnvironmentUnavailable
from drtests.processes import free_port, tcp_open

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_STAND_IN, MOTO_STAND_IN = (r.image for r in RECIPES)


def _drtests(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drtests.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerEngine]:
    try:
        found = find_engine(None, tmp_path_factory.mktemp("engine"))
    except EnvironmentUnavailable as exc:
        pytest.skip(str(exc))
    found.configure_testcontainers()
    yield found
    found.close()


def _has_image(engine: ContainerEngine, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        engine.client().images.get(image)
    except ImageNotFound:
        return False
    return True


def _profile(tmp_path: Path, **containers: object) -> Profile:
    settings = ContainerSettings(
        **{"postgres_image": POSTGRES_STAND_IN, "s3_image": MOTO_STAND_IN, **containers}  # type: ignore[arg-type]
    )
    return local_profile().model_copy(
        update={"environment": "containers", "containers": settings, "state_dir": tmp_path}
    )


def _ours(engine: ContainerEngine) -> list[str]:
    """Containers and volumes this process labelled and did not remove."""
    client = engine.client()
    label = f"{OWNER_LABEL}={run_labels()[OWNER_LABEL]}"
    return [c.name for c in client.containers.list(all=True, filters={"label": label})] + [
        v.name for v in client.volumes.list(filters={"label": label})
    ]


# ------------------------------------------------------------------ no engine


def test_no_engine_names_what_to_install(tmp_path: Path) -> None:
    if DOCKER_SOCKET.exists() or Path("/run/podman/podman.sock").exists():
        pytest.skip("this machine has an engine socket")
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    error = _one_line_error(_drtests("containers", "check", env=env))
    assert error.startswith("drtests: error: no container engine answers (docker: not installed")
    assert "install Docker, or " in error
    assert "apt-get install podman runc" in error and "DOCKER_HOST" in error


def test_an_engine_that_does_not_answer_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/missing.sock"}
    started = time.monotonic()
    error = _one_line_error(_drtests("containers", "check", env=env))
    assert time.monotonic() - started < 60
    assert f"the container engine at unix://{tmp_path}/missing.sock does not answer" in error


# ------------------------------------------------------------------ images


def test_a_missing_image_is_named_with_what_to_do(engine: ContainerEngine, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        'environment = "containers"\n[containers]\n'
        f'postgres_image = "localhost/drtests-nowhere:1"\ns3_image = "{MOTO_STAND_IN}"\n'
        "pull_timeout_s = 30\n"
    )
    env = {**os.environ, "DOCKER_HOST": engine.docker_host}
    started = time.monotonic()
    error = _one_line_error(_drtests("containers", "check", "--profile", str(profile), env=env))
    assert time.monotonic() - started < 60
    assert "image localhost/drtests-nowhere:1 not found" in error
    assert "set the [containers] image setting" in error


def test_a_missing_stand_in_says_how_to_build_it(
    engine: ContainerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drtests.containers import images

    ghost = images.Recipe("localhost/drtests-ghost:1", "postgres", "postgres:17")
    monkeypatch.setattr(images, "RECIPES", (*RECIPES, ghost))
    with pytest.raises(EnvironmentUnavailable) as raised:
        images.ensure_image(engine.client(), ghost.image, 30)
    assert str(raised.value) == (
        "image localhost/drtests-ghost:1 not found: build it with `drtests containers build` "
        "(needs root, debootstrap and the engine)"
    )


# ------------------------------------------------------------------ readiness


def test_a_container_that_never_answers_fails_within_the_bound(engine: ContainerEngine) -> None:
    """A container that runs but never listens: the wait ends at its bound and names it."""
    if not _has_image(engine, BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} not built: drtests containers build")
    port = free_port()
    container = engine.client().containers.run(
        BASE_IMAGE,
        ["sh", "-c", "echo waiting for nothing; sleep 600"],
        detach=True,
        labels=run_labels(),
        ports={"5432/tcp": ("127.0.0.1", port)},
    )
    try:
        started = time.monotonic()
        with pytest.raises(EnvironmentUnavailable) as raised:
            ContainerWorkload("postgres", container).wait_ready(
                lambda: tcp_open("127.0.0.1", port), timeout=3
            )
        assert time.monotonic() - started < 30
        assert re.fullmatch(
            r"postgres not ready after 3s \(\d+ tries over \d+s\); "
            r"its last log lines: waiting for nothing",
            str(raised.value),
        ), str(raised.value)
    finally:
        container.remove(force=True)
    assert _ours(engine) == []


def test_a_container_that_exits_is_reported_with_its_log(
    engine: ContainerEngine, tmp_path: Path
) -> None:
    """The bare Debian base where PostgreSQL is expected: there is no postgres to run."""
    if not _has_image(engine, BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} not built: drtests containers build")
    profile = _profile(tmp_path, postgres_image=BASE_IMAGE, ready_timeout_s=30)
    with (
        pytest.raises(EnvironmentUnavailable) as raised,
        containers_environment(profile, tmp_path / "env"),
    ):
        pass
    message = str(raised.value)
    assert "postgres" in message
    assert "exited during start-up" in message or "cannot start PostgreSQL" in message
    assert _ours(engine) == []


# ------------------------------------------------------------------ leftovers


def test_the_next_run_removes_what_a_killed_run_left(engine: ContainerEngine) -> None:
    if not _has_image(engine, BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} not built: drtests containers build")
    client = engine.client()
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = run_labels()[OWNER_LABEL].rpartition(":")[0]
    gone = {OWNER_LABEL: f"{host}:{dead.pid}"}
    alive = {OWNER_LABEL: f"{host}:{os.getpid()}"}
    left = client.containers.create(BASE_IMAGE, ["sleep", "600"], labels=gone)
    kept = client.containers.create(BASE_IMAGE, ["sleep", "600"], labels=alive)
    volume = client.volumes.create(f"drtests-test-{dead.pid}", labels=gone)
    try:
        removed = remove_leftovers(client)
        assert f"container {left.name}" in removed and f"volume {volume.name}" in removed
        assert f"container {kept.name}" not in removed
        names = [c.name for c in client.containers.list(all=True)]
        assert left.name not in names and kept.name in names
    finally:
        kept.remove(force=True)


# ------------------------------------------------------------------ profile


def test_a_containers_profile_adjusts_the_embedded_defaults(tmp_path: Path) -> None:
    profile = load_profile(ROOT / "profiles" / "containers-debian.toml")
    assert profile.environment == "containers"
    assert profile.containers.postgres_image == POSTGRES_STAND_IN
    assert profile.services.airflow == local_profile().services.airflow
    assert profile.monitoring == local_profile().monitoring
    assert ContainerSettings().postgres_image == "postgres:17"  # official by default
