"""Images: present, pulled within a bounded wait, or built here from Debian packages.

Users with a registry run the official images. A machine without one builds stand-ins from
the recipes beside this module: a Debian root file system from ``debootstrap``, imported
into the engine, then each service's packages from Debian's archive. A built image carries
the digest of its recipe as a label, so an unchanged recipe is not built twice on a machine.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from drtests.errors import EnvironmentUnavailable

if TYPE_CHECKING:
    import docker

RECIPES_DIR = Path(__file__).parent / "recipes"
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = f"localhost/drtests-debian:{DEBIAN_SUITE}"
RECIPE_LABEL = "org.drtests.recipe"


@dataclass(frozen=True)
class Recipe:
    """A locally built stand-in for an official image."""

    image: str
    folder: str
    stands_in_for: str

    def digest(self) -> str:
        sha = hashlib.sha256(f"{DEBIAN_SUITE}\n".encode())
        for path in sorted((RECIPES_DIR / self.folder).iterdir()):
            sha.update(path.name.encode() + b"\0" + path.read_bytes())
        return sha.hexdigest()[:16]


RECIPES = (
    Recipe("localhost/drtests-postgres:17", "postgres", "postgres:17"),
    Recipe("localhost/drtests-moto:5.1", "moto", "motoserver/moto:5.2.5"),
)


def recipe_for(image: str) -> Recipe | None:
    return next((r for r in RECIPES if r.image == image), None)


def _missing_image_hint(image: str) -> str:
    recipe = recipe_for(image)
    if recipe is not None:
        return "build it with `drtests containers build` (needs root, debootstrap and the engine)"
    return "pull it, or set the [containers] image setting to one this engine has"


def ensure_image(client: docker.DockerClient, image: str, pull_timeout: float) -> None:
    """The image is present, or is pulled within ``pull_timeout`` seconds; otherwise one
    line naming the image and what to do."""
    from docker.errors import DockerException, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    except DockerException as exc:
        raise EnvironmentUnavailable(f"cannot inspect image {image}: {exc}") from None
    if recipe_for(image) is not None:
        raise EnvironmentUnavailable(f"image {image} not found: {_missing_image_hint(image)}")
    outcome: list[BaseException | None] = []

    def pull() -> None:
        try:
            client.images.pull(image)
            outcome.append(None)
        except (DockerException, OSError) as exc:
            outcome.append(exc)

    puller = threading.Thread(target=pull, name=f"pull {image}", daemon=True)
    puller.start()
    puller.join(pull_timeout)
    if not outcome:
        raise EnvironmentUnavailable(
            f"image {image} not found, and pulling it took longer than {pull_timeout:.0f}s: "
            + _missing_image_hint(image)
        )
    if outcome[0] is not None:
        reason = (str(getattr(outcome[0], "explanation", "") or outcome[0]).splitlines() or ["?"])[
            0
        ]
        raise EnvironmentUnavailable(
            f"image {image} not found and cannot be pulled ({reason}): "
            + _missing_image_hint(image)
        )


def _label_of(cli: str, image: str) -> str | None:
    """The recipe label of a local image; None when the engine does not have the image."""
    result = subprocess.run(
        [
            cli,
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}',
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _run(argv: list[str], what: str, stdin: IO[bytes] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, stdin=stdin, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode(errors="replace").strip()
        tail = " ".join(output.splitlines()[-3:])
        raise EnvironmentUnavailable(f"{what} failed: {tail or 'exit ' + str(result.returncode)}")


def _build_base(cli: str, progress: Callable[[str], None]) -> None:
    if _label_of(cli, BASE_IMAGE) is not None:
        progress(f"{BASE_IMAGE}: present")
        return
    if os.geteuid() != 0:
        raise EnvironmentUnavailable(
            f"building {BASE_IMAGE} needs root (debootstrap): run as root, or use images "
            "from a registry"
        )
    debootstrap = "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise EnvironmentUnavailable(
            f"building {BASE_IMAGE} needs debootstrap: apt-get install debootstrap"
        )
    with tempfile.TemporaryDirectory(prefix="drtests-rootfs-") as rootfs:
        progress(f"{BASE_IMAGE}: debootstrap {DEBIAN_SUITE} (minbase) from {DEBIAN_MIRROR}")
        _run(
            [debootstrap, "--variant=minbase", DEBIAN_SUITE, rootfs, DEBIAN_MIRROR],
            "debootstrap",
        )
        progress(f"{BASE_IMAGE}: importing the root file system")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        try:
            _run([cli, "import", "-", BASE_IMAGE], f"{cli} import", stdin=tar.stdout)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()


def build_local_images(cli: str, images: list[str], progress: Callable[[str], None]) -> list[str]:
    """Build the named images that have a recipe and are missing or out of date; returns
    one line per image. Images without a recipe are left to the registry."""
    lines: list[str] = []
    for image in images:
        recipe = recipe_for(image)
        if recipe is None:
            lines.append(f"{image}: no local recipe (stands for itself; pulled when needed)")
            continue
        digest = recipe.digest()
        if _label_of(cli, image) == digest:
            lines.append(f"{image}: up to date (recipe {digest})")
            progress(lines[-1])
            continue
        _build_base(cli, progress)
        progress(f"{image}: building from Debian packages (stands in for {recipe.stands_in_for})")
        _run(
            [
                cli,
                "build",
                "--network",
                "host",
                "--build-arg",
                f"BASE={BASE_IMAGE}",
                "--label",
                f"{RECIPE_LABEL}={digest}",
                "-t",
                image,
                str(RECIPES_DIR / recipe.folder),
            ],
            f"building {image}",
        )
        lines.append(f"{image}: built (recipe {digest})")
        progress(lines[-1])
    return lines
