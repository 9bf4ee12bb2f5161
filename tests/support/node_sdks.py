"""The svix JavaScript SDKs the API tests use as clients: 1.x and 2.x from npm, installed
once into .cache/svix-js/ (``make test`` does it first; a test run without it installs
them itself). Skipped, saying so, only where node or npm is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "svix-js"
SCRIPT = Path(__file__).with_name("svix_js_client.mjs")
# The newest of each major version (2.x pinned by its major: a 3.x is another SDK to test).
VERSIONS = {"1": "svix@1", "2": "svix@2"}
NO_NODE = "node and npm are not installed: the svix JavaScript SDK tests need them"


def node_missing() -> bool:
    return shutil.which("node") is None or shutil.which("npm") is None


def sdk_dir(major: str) -> Path:
    """The install prefix of svix ``major`` (``1`` or ``2``), installed if it is not yet."""
    prefix = CACHE / f"svix{major}"
    if not (prefix / "node_modules" / "svix" / "package.json").exists():
        quiet = ["--silent", "--no-audit", "--no-fund"]
        subprocess.run(
            ["npm", "install", *quiet, "--prefix", str(prefix), VERSIONS[major]],
            check=True,
            timeout=300,
        )
    return prefix


if __name__ == "__main__":  # make test: install both before the suite runs
    if node_missing():
        print(NO_NODE)
    else:
        for major in VERSIONS:
            print(f"svix {major}.x in {sdk_dir(major)}")
