"""deploy/k8s: every manifest validates against the Kubernetes API schemas and the pieces refer to each other.

The schemas come with kubernetes-validate (bundled, offline), in strict mode: an unknown or misspelt field fails.
Nothing is applied to a cluster.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import typer.main

from streams.cli import app as cli_app
from tests.unit.deploy_files import K8S_DIR, LOANWATCH_IMAGE, load_yaml_documents, settings_from

#: The Kubernetes version the manifests are written for and validated against.
KUBERNETES_VERSION = "1.33"
#: A pod IP for the downward API (status.podIP) when settings are built from a manifest (TEST-NET-1).
SAMPLE_POD_IP = "192.0.2.10"


def _kustomization() -> dict[str, Any]:
    kustomization: dict[str, Any] = load_yaml_documents(K8S_DIR / "kustomization.yaml")[0]
    return kustomization


def _resources() -> list[dict[str, Any]]:
    return [doc for name in _kustomization()["resources"] for doc in load_yaml_documents(K8S_DIR / name)]


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in _resources() if r["kind"] == kind}


def _workloads() -> dict[str, dict[str, Any]]:
    """Deployments and Jobs by name."""
    return {**_of_kind("Deployment"), **_of_kind("Job")}


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return containers


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from its ConfigMaps, Secrets and own `env` (downward API filled in)."""
    config_maps, secrets = _of_kind("ConfigMap"), _of_kind("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]].get("data", {}))
        else:
            env.update(secrets[source["secretRef"]["name"]].get("stringData", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", item
            env[item["name"]] = SAMPLE_POD_IP
    return env


def test_kustomization_lists_every_manifest_once() -> None:
    listed = _kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    resources = _resources()
    assert {"Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service", "PodDisruptionBudget"} <= {
        r["kind"] for r in resources
    }
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    worker = _of_kind("Deployment")["loanwatch-worker"]
    worker["spec"]["replica"] = worker["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_every_resource_lands_in_the_namespace() -> None:
    namespace = _kustomization()["namespace"]
    assert list(_of_kind("Namespace")) == [namespace]
    # kustomize sets the namespace; a manifest naming another one would be silently moved or conflict.
    assert all(r["metadata"].get("namespace", namespace) == namespace for r in _resources())


def test_workloads_run_the_image_with_real_commands() -> None:
    known = set(typer.main.get_command(cli_app).commands)  # type: ignore[attr-defined]
    images = {entry["name"] for entry in _kustomization()["images"]}
    workloads = _workloads()
    assert {"loanwatch-init", "loanwatch-worker", "loanwatch-writer", "loanwatch-console"} <= set(workloads)
    for name, workload in workloads.items():
        for container in _containers(workload):
            assert container["image"].split(":")[0] == LOANWATCH_IMAGE and LOANWATCH_IMAGE in images, name
            assert container["args"][0] in known, f"{name}: loanwatch {container['args'][0]} does not exist"


def test_workloads_refer_to_config_maps_and_secrets_that_exist() -> None:
    config_maps, secrets = set(_of_kind("ConfigMap")), set(_of_kind("Secret"))
    for name, workload in _workloads().items():
        for container in _containers(workload):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source["secretRef"]
                assert ref["name"] in (config_maps if "configMapRef" in source else secrets), f"{name}: {ref}"


def test_secrets_hold_placeholders_only() -> None:
    for name, secret in _of_kind("Secret").items():
        assert "data" not in secret, f"{name}: base64 data would hide a real value; use stringData placeholders"
        for key, value in secret.get("stringData", {}).items():
            assert "REPLACE_ME" in value, f"{name}.{key} must be a placeholder"


@pytest.mark.parametrize("name", ["loanwatch-init", "loanwatch-worker", "loanwatch-writer", "loanwatch-console"])
def test_workload_environment_is_accepted_by_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = _containers(_workloads()[name])
    settings = settings_from(_container_env(container), monkeypatch)
    assert settings.kafka_bootstrap is not None
    if name == "loanwatch-worker":
        assert settings.web_host == SAMPLE_POD_IP and settings.web_bind == "0.0.0.0"  # noqa: S104
    else:
        assert settings.clickhouse_url is not None


def test_pods_are_restricted_non_root_with_resources() -> None:
    for name, workload in _workloads().items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name


def test_long_running_pods_have_probes_on_declared_ports() -> None:
    for name, deployment in _of_kind("Deployment").items():
        for container in _containers(deployment):
            ports = {p["name"] for p in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                check = container[probe].get("httpGet") or container[probe]["tcpSocket"]
                assert check["port"] in ports, f"{name}: {probe} probes an undeclared port"


@pytest.mark.parametrize(("name", "field"), [("loanwatch-worker", "worker_metrics_port"),
                                             ("loanwatch-writer", "writer_metrics_port")])
def test_scrape_annotations_name_the_metrics_port_settings_open(
    name: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _workloads()[name]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    port = getattr(settings_from(_container_env(container), monkeypatch), field)
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port) and port > 0
    assert {"name": "metrics", "containerPort": port} in container["ports"]


def test_selectors_match_their_pods() -> None:
    deployments = _of_kind("Deployment")
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), name

    def selected(selector: dict[str, str]) -> list[str]:
        return [
            n for n, d in deployments.items() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    for name, service in _of_kind("Service").items():
        assert selected(service["spec"]["selector"]) == [name], f"service {name} selects the wrong pods"
        for port in service["spec"]["ports"]:
            pod_ports = {p["name"] for c in _containers(deployments[name]) for p in c["ports"]}
            assert port["targetPort"] in pod_ports, f"service {name}: no pod port {port['targetPort']}"
    (budget,) = _of_kind("PodDisruptionBudget").values()
    assert selected(budget["spec"]["selector"]["matchLabels"]) == ["loanwatch-worker"]


def test_console_asks_the_workers_profile_api_through_its_service(monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = _containers(_workloads()["loanwatch-console"])
    url = settings_from(_container_env(container), monkeypatch).profile_api_url
    (port,) = _of_kind("Service")["loanwatch-worker"]["spec"]["ports"]
    (worker,) = _containers(_workloads()["loanwatch-worker"])
    web_port = settings_from(_container_env(worker), monkeypatch).web_port
    assert url == f"http://loanwatch-worker:{port['port']}"
    assert {"name": port["targetPort"], "containerPort": web_port} in worker["ports"]
