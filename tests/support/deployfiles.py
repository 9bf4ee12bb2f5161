"""Reading deploy/ and the Dockerfile as the tools would: compose's variable interpolation,
its merge keys, the Dockerfile's instructions, the Kubernetes manifests' documents."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a dollar.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(ValueError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ``value`` (and everything inside it) from ``env``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op and op.endswith("-"):
            return interpolate(arg, env)
        if op and op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return ""

    return _VARIABLE.sub(replace, value)


def compose(env: dict[str, str]) -> dict[str, Any]:
    """deploy/compose.yaml as compose sees it with ``env``: merge keys resolved (PyYAML does
    ``<<``), extension fields (``x-``) dropped, variables interpolated."""
    raw = yaml.safe_load(COMPOSE.read_text())
    return interpolate({k: v for k, v in raw.items() if not k.startswith("x-")}, env)


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def exec_form(args: str) -> list[str]:
    """An instruction's arguments in exec (JSON) form, or shell form split as words."""
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in dockerfile_final_stage():
        if word == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def dockerfile_entrypoint() -> list[str]:
    (entrypoint,) = [exec_form(a) for w, a in dockerfile_final_stage() if w == "ENTRYPOINT"]
    return entrypoint


def dockerfile_exposed() -> set[int]:
    ports = set()
    for word, args in dockerfile_final_stage():
        if word == "EXPOSE":
            ports |= {int(p.split("/")[0]) for p in args.split()}
    return ports


def dockerfile_user() -> str:
    (user,) = [a for w, a in dockerfile_final_stage() if w == "USER"]
    return user


def k8s_documents() -> list[dict[str, Any]]:
    """Every resource in deploy/k8s/ (kustomization.yaml is kustomize's, not one), each with
    the name of its file under ``_file``."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append({**doc, "_file": path.name})
    return docs
