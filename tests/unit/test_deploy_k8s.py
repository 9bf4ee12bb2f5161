"""deploy/k8s/: every manifest is valid against the Kubernetes API's own types (the official
client's models refuse unknown fields and wrong types), and the parts agree with each other,
with the Dockerfile and with deploy/compose.yaml: images, commands, ports, probes, user."""

from __future__ import annotations

import tomllib
from typing import Any

import kubernetes.client
import pytest
import yaml

from postback.config import Settings
from postback.store.secretbox import SecretKeyError, parse_key
from tests.support import deployfiles

DOCS = deployfiles.k8s_documents()
COMPOSE = deployfiles.compose({"POSTBACK_SECRET_KEY": "k", "POSTBACK_ADMIN_TOKEN": "t"})
VERSION = tomllib.loads((deployfiles.ROOT / "pyproject.toml").read_text())["project"]["version"]
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor"}  # the Prometheus Operator's, not core


def one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (c,) = pod(workload)["containers"]
    return c


WORKLOADS = {
    "api": one("Deployment", "postback-api"),
    "worker": one("Deployment", "postback-worker"),
    "migrate": one("Job", "postback-migrate"),
}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['_file']}:{d['kind']}")
def test_each_manifest_is_valid_for_its_kind(doc: dict[str, Any]) -> None:
    body = {k: v for k, v in doc.items() if k != "_file"}
    assert body["metadata"]["labels"]["app.kubernetes.io/name"] == "postback"
    if doc["kind"] in OPERATOR_KINDS:
        assert body["apiVersion"] == "monitoring.coreos.com/v1"
        return
    version = body["apiVersion"].rpartition("/")[2]
    model = getattr(kubernetes.client, version.capitalize() + body["kind"])
    model.model_validate(body)  # raises on a misspelt field, a wrong type, a missing name


def test_the_validation_would_catch_a_misspelt_probe() -> None:
    bad = yaml.safe_load(yaml.safe_dump({k: v for k, v in WORKLOADS["api"].items() if k[0] != "_"}))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(ValueError, match="livenessprobe"):
        kubernetes.client.V1Deployment.model_validate(bad)


def test_kustomization_lists_every_core_manifest() -> None:
    kustomization = yaml.safe_load((deployfiles.K8S / "kustomization.yaml").read_text())
    core = {d["_file"] for d in DOCS if d["kind"] not in OPERATOR_KINDS}
    assert set(kustomization["resources"]) == core


def test_images_and_commands_match_the_dockerfile_and_compose() -> None:
    services = COMPOSE["services"]
    for name, workload in WORKLOADS.items():
        c = container(workload)
        assert c["image"] == services[name]["image"] == f"postback:{VERSION}"
        # The image's entry point is postback; each workload passes its subcommand.
        assert "command" not in c
        assert c["args"] == services[name]["command"] == [name]


def test_user_ports_and_probes_agree_with_the_image() -> None:
    uid, _, gid = deployfiles.dockerfile_user().partition(":")
    image_env = deployfiles.dockerfile_env()
    for workload in WORKLOADS.values():
        security = pod(workload)["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid))
        c = container(workload)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert "memory" in c["resources"]["limits"]
        refs = [next(iter(e.values()))["name"] for e in c["envFrom"]]
        assert set(refs) == {"postback"}
        assert one("Secret", "postback") and one("ConfigMap", "postback")

    api = container(WORKLOADS["api"])
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports["http"] == int(image_env["POSTBACK_PORT"])
    assert ports["http"] in deployfiles.dockerfile_exposed()
    assert api["readinessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    assert api["livenessProbe"]["tcpSocket"]["port"] in ports

    worker = container(WORKLOADS["worker"])
    config = one("ConfigMap", "postback")["data"]
    metrics = {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
    compose_worker = deployfiles.service_environment(COMPOSE["services"]["worker"])
    assert metrics == int(config["POSTBACK_WORKER_METRICS_PORT"])
    assert metrics == int(compose_worker["POSTBACK_WORKER_METRICS_PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert worker[probe]["httpGet"]["port"] == "metrics"
    # A worker's graceful stop takes up to the request timeout + 1 s.
    grace = pod(WORKLOADS["worker"])["terminationGracePeriodSeconds"]
    assert grace > Settings().request_timeout + 1
    assert pod(WORKLOADS["migrate"])["restartPolicy"] in {"Never", "OnFailure"}


def test_selectors_reach_what_they_mean() -> None:
    for workload in (WORKLOADS["api"], WORKLOADS["worker"]):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one("Service", "postback-api")
    api_labels = WORKLOADS["api"]["spec"]["template"]["metadata"]["labels"]
    worker_labels = WORKLOADS["worker"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_labels.items()
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    names = {p["name"] for p in container(WORKLOADS["api"])["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_prometheus_scrapes_the_api_and_the_workers() -> None:
    for workload in (WORKLOADS["api"], WORKLOADS["worker"]):
        notes = workload["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
        ports = {p["containerPort"] for p in container(workload)["ports"]}
        assert int(notes["prometheus.io/port"]) in ports
    monitor = one("ServiceMonitor", "postback-api")
    service = one("Service", "postback-api")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
        p["name"] for p in service["spec"]["ports"]
    }
    pods = one("PodMonitor", "postback-worker")
    labels = WORKLOADS["worker"]["spec"]["template"]["metadata"]["labels"]
    assert pods["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert {e["port"] for e in pods["spec"]["podMetricsEndpoints"]} == {"metrics"}


def test_the_secret_holds_what_every_process_shares_and_its_placeholders_do_not_run() -> None:
    secret = one("Secret", "postback")["stringData"]
    assert set(secret) == {"POSTBACK_DATABASE_URL", "POSTBACK_SECRET_KEY", "POSTBACK_ADMIN_TOKEN"}
    with pytest.raises(SecretKeyError):
        parse_key(secret["POSTBACK_SECRET_KEY"])
    assert not secret["POSTBACK_DATABASE_URL"].startswith("postgresql://")
