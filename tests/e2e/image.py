"""Building the Dockerfile's image on a machine that has no registry and cannot start
containers, and running its entry point in a chroot of the image's filesystem.

- The base image is made from Debian packages (mmdebstrap, then ``podman import``) and kept
  between runs: a tarball under ~/.cache/postback-test and the imported image, both named by a
  hash of what went into them.
- ``podman build --isolation=chroot`` runs the Dockerfile's RUN steps without an OCI runtime
  (the machine's cgroups stop ``podman run``); its layers are cached, and what an older build
  left behind is pruned by the label every layer of ours carries.
- The image is run as a chroot of a created (never started) container's writable filesystem,
  as the image's user, with the image's environment, working directory and entry point.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LABEL = "org.postback.test=1"
IMAGE = "localhost/postback-test:latest"
BUILD_STAGE = "localhost/postback-test:build"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The build's RUN steps trust what this machine trusts (a proxy of its own may sign the
# registries' TLS, with a CA made when the machine starts): its certificates are mounted
# over the image's while they run, so neither the base nor the layers depend on them. pip,
# which carries its own CA list, is told to use the system's.
HOST_CERTS = Path("/etc/ssl/certs")
BASE_ENV = ("PIP_CERT=/etc/ssl/certs/ca-certificates.crt",)
SLIM = ("path-exclude=/usr/share/doc/*", "path-exclude=/usr/share/man/*")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "postback-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def missing_tools() -> list[str]:
    return [t for t in ("podman", "mmdebstrap", "chroot") if shutil.which(t) is None]


def rootless() -> bool:
    return os.getuid() != 0


def run(args: list[str], timeout: float = 600, **kw: Any) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise AssertionError(
            f"{shlex.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n"
            f"{done.stderr[-4000:]}"
        )
    return done.stdout


def _image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def _base_recipe() -> tuple[list[str], str]:
    """The mmdebstrap arguments (without the output path) and the hash that names them."""
    args = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(PACKAGES)]
    args += [f"--dpkgopt={opt}" for opt in SLIM]
    digest = hashlib.sha256(repr((SUITE, args, BASE_ENV)).encode())
    return [*args, SUITE], digest.hexdigest()[:16]


def base_image() -> str:
    """The Debian base, imported once per recipe; made (about two minutes) when missing."""
    recipe, digest = _base_recipe()
    name = f"localhost/postback-test-base:{digest}"
    cache = cache_dir()
    with (cache / "base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once make it once
        if _image_exists(name):
            return name
        tarball = cache / f"base-{digest}.tar"
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            run([*recipe, str(partial)], timeout=1200)
            partial.rename(tarball)
            for old in cache.glob("base-*.tar"):
                if old != tarball:
                    old.unlink()
        changes = [f"--change=ENV {env}" for env in BASE_ENV]
        run(["podman", "import", *changes, str(tarball), name])
        # Bases of older recipes go (the images built on them were pruned with them).
        listed = run(["podman", "images", "--format={{.Repository}}:{{.Tag}}"]).split()
        stale = [i for i in listed if i.startswith(name.split(":")[0] + ":") and i != name]
        if stale:
            subprocess.run(["podman", "rmi", "--force", *stale], capture_output=True)
    return name


def build_image(base: str) -> str:
    """``podman build`` of the checkout's Dockerfile on ``base``; returns the image's name."""
    common = [
        "podman",
        "build",
        "--isolation=chroot",  # RUN steps without an OCI runtime
        "--format=docker",  # the OCI format has no HEALTHCHECK
        f"--label={LABEL}",
        f"--build-arg=BASE_IMAGE={base}",
        *([f"--volume={HOST_CERTS}:{HOST_CERTS}:ro"] if HOST_CERTS.is_dir() else []),
        "--file",
        str(ROOT / "Dockerfile"),
    ]
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build (and prune) at a time on this machine
        # The build stage is tagged too, so that pruning leaves its cached layers in place.
        run([*common, "--target=build", f"--tag={BUILD_STAGE}", str(ROOT)], timeout=1200)
        run([*common, f"--tag={IMAGE}", str(ROOT)], timeout=1200)
        for _ in range(10):  # each pass frees the layers the last one orphaned
            # Only tidying: another podman command removing an image meanwhile makes a
            # pass fail ("image not known"); what it left is pruned by the next build.
            done = subprocess.run(
                ["podman", "image", "prune", "--force", f"--filter=label={LABEL}"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0 or not done.stdout.strip():
                break
    return IMAGE


def inspect(image: str) -> dict[str, Any]:
    (info,) = json.loads(run(["podman", "image", "inspect", image]))
    return info


def changes(container: str) -> list[str]:
    """What the container's processes changed in its filesystem (podman diff: A/C/D path)."""
    return run(["podman", "diff", container]).split()


def healthcheck(info: dict[str, Any]) -> dict[str, Any]:
    """podman keeps the image's HEALTHCHECK beside its config; docker keeps it inside."""
    return info.get("Healthcheck") or info["Config"]["Healthcheck"]


@dataclass
class Rootfs:
    """A created, never started, container of ``image``: its filesystem is writable."""

    container: str
    info: dict[str, Any]

    @classmethod
    def create(cls, image: str) -> Rootfs:
        container = run(["podman", "create", "--no-healthcheck", image]).strip()
        return cls(container, inspect(image))

    @property
    def config(self) -> dict[str, Any]:
        return self.info["Config"]

    def healthcheck(self) -> list[str]:
        """The image's HEALTHCHECK command, as the arguments to run."""
        kind, *rest = healthcheck(self.info)["Test"]
        return rest if kind == "CMD" else ["/bin/sh", "-c", *rest]

    def command(self, args: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``args`` run inside the image as its user, environment and working directory,
        with ``env`` over the image's. Rootless, the mount lives in podman's user namespace,
        so the mount and the chroot both happen inside ``podman unshare``."""
        image_env = dict(e.split("=", 1) for e in self.config.get("Env") or [])
        user = self.config.get("User") or "0:0"
        script = (
            'mnt=$(podman mount "$1") && shift && cd "$mnt" && '
            'exec chroot --userspec="$0" "$mnt" /usr/bin/env -i "$@"'
        )
        inner = [f"{k}={v}" for k, v in (image_env | (env or {})).items()]
        workdir = self.config.get("WorkingDir") or "/"
        inner += ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, *args]
        prefix = ["podman", "unshare"] if rootless() else []
        return [*prefix, "sh", "-c", script, user, self.container, *inner]

    def entrypoint(self, *args: str) -> list[str]:
        return [*(self.config.get("Entrypoint") or []), *args]

    def remove(self) -> None:
        subprocess.run(["podman", "rm", "--force", self.container], capture_output=True)
