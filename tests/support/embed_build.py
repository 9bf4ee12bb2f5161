"""The page of tests/web/test_browser_embed.py: react, react-dom, svix and svix-react from
npm (versions locked in tests/web/embed/package-lock.json), bundled with esbuild.

Installed and built once into .cache/embed/ (ignored by git) and reused while the lock
file and the page's source are unchanged. `make test` runs this module first
(`python -m tests.support.embed_build`), so the suite itself needs no network; a test
that finds no bundle and cannot make one fails with npm's own words (it skips only where
node or npm is absent)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "web" / "embed"
CACHE = ROOT / ".cache" / "embed"
FILES = ("package.json", "package-lock.json", "app.jsx", "index.html")
NPM_SECONDS = 300


class Unavailable(Exception):
    """npm or node is missing, or the packages could not be installed or bundled."""


def _digest(*names: str) -> str:
    h = hashlib.sha256()
    for name in names:
        h.update((SOURCE / name).read_bytes())
    return h.hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, cwd=CACHE, capture_output=True, text=True, timeout=NPM_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what} took more than {NPM_SECONDS} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-12:]
        raise Unavailable(f"{what} failed ({done.returncode}): " + " | ".join(said))


def build() -> Path:
    """The directory holding index.html and bundle.js, built when not already current."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"no {tool} on PATH (`make test` installs nodejs and npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    installed = CACHE / "node_modules" / ".postback-lock"
    lock = _digest("package.json", "package-lock.json")
    if not installed.exists() or installed.read_text() != lock:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCE / name, CACHE / name)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci")
        installed.write_text(lock)
    built = CACHE / "page" / _digest(*FILES)
    if not (built / "bundle.js").exists():
        built.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE / "app.jsx", CACHE / "app.jsx")
        esbuild = str(CACHE / "node_modules" / ".bin" / "esbuild")
        bundle = [esbuild, "app.jsx", "--bundle", "--format=iife", "--jsx=automatic"]
        options = ['--define:process.env.NODE_ENV="production"', "--log-level=error"]
        _run([*bundle, *options, f"--outfile={built / 'bundle.js'}"], "esbuild")
        shutil.copyfile(SOURCE / "index.html", built / "index.html")
    return built


if __name__ == "__main__":
    try:
        print(f"embed test page: {build()}")
    except Unavailable as exc:
        sys.exit(f"embed test page: {exc}")
