"""deploy/prometheus and deploy/grafana: scrape targets are the compose services and ports that serve metrics,
and the dashboard queries only metrics that streams/metrics.py exports."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from streams.metrics import WorkerMetrics, WriterMetrics
from tests.unit.deploy_files import (
    COMPOSE_DIR,
    GRAFANA_DIR,
    PROMETHEUS_FILE,
    committed_env_file,
    load_compose,
    load_yaml_documents,
    read_env_file,
    settings_from,
)

#: Scrape job -> (compose service, the Settings field holding the port it serves /metrics on).
SCRAPED = {"loanwatch-worker": ("worker", "worker_metrics_port"), "loanwatch-writer": ("writer", "writer_metrics_port")}
#: Series suffixes by metric type, as the text exposition format writes them.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
#: Metric names in PromQL: ours and the process metrics every exporter adds (not label names or functions).
_METRIC = re.compile(r"\b(?:loanwatch|process|python)_[a-z0-9_]+\b")


def _prometheus() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml_documents(PROMETHEUS_FILE)[0]
    return config


def _jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in _prometheus()["scrape_configs"]}


def _targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) pairs a job scrapes: static targets and DNS service discovery names."""
    found = [
        (host, int(port))
        for static in job.get("static_configs", [])
        for host, port in (target.rsplit(":", 1) for target in static["targets"])
    ]
    found += [(name, int(dns["port"])) for dns in job.get("dns_sd_configs", []) for name in dns["names"]]
    return found


def _exported_series() -> set[str]:
    """Every series name the worker and the writer can expose, labelled metrics without children included."""
    names: set[str] = set()
    for metrics in (WorkerMetrics("g"), WriterMetrics("g")):
        for family in metrics.registry.collect():
            names.add(family.name)
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
            names.update(sample.name for sample in family.samples)
    return names


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads((GRAFANA_DIR / "dashboards" / "loanwatch.json").read_text("utf-8"))
    return dashboard


def _queries() -> list[str]:
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel.get("targets", [])]


def test_prometheus_config_has_the_worker_and_writer_jobs() -> None:
    config = _prometheus()
    assert config["global"]["scrape_interval"].endswith("s")
    assert set(SCRAPED) <= set(_jobs())


@pytest.mark.parametrize("job_name", sorted(SCRAPED))
def test_scrape_targets_are_compose_services_on_their_metrics_port(
    job_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_name, field = SCRAPED[job_name]
    service = load_compose()["services"][service_name]
    env: dict[str, str] = {}
    for entry in service.get("env_file", []):
        env.update(read_env_file(committed_env_file(COMPOSE_DIR / entry["path"])))
    env.update({k: str(v) for k, v in service.get("environment", {}).items()})
    port = getattr(settings_from(env, monkeypatch), field)
    assert _targets(_jobs()[job_name]) == [(service_name, port)]


def test_every_scraped_host_is_a_compose_service() -> None:
    services = set(load_compose()["services"])
    for name, job in _jobs().items():
        for host, _port in _targets(job):
            assert host in services or (name == "prometheus" and host == "localhost"), f"{name}: {host}"


def test_grafana_datasource_points_at_the_compose_prometheus() -> None:
    (datasource,) = load_yaml_documents(GRAFANA_DIR / "provisioning/datasources/prometheus.yaml")[0]["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in load_compose()["services"]


def test_dashboard_panels_use_the_provisioned_datasource() -> None:
    (datasource,) = load_yaml_documents(GRAFANA_DIR / "provisioning/datasources/prometheus.yaml")[0]["datasources"]
    panels = _dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"]), panel["title"]


def test_dashboard_queries_only_metrics_the_code_exports() -> None:
    exported = _exported_series()
    used = {name for query in _queries() for name in _METRIC.findall(query)}
    assert used, "the dashboard queries nothing"
    assert not used - exported, f"not exported by streams/metrics.py: {sorted(used - exported)}"


def test_exported_series_include_suffixes_of_labelled_metrics_without_samples() -> None:
    exported = _exported_series()
    assert {"loanwatch_alerts_total", "loanwatch_writer_insert_seconds_bucket"} <= exported
    assert "loanwatch_alerts" in exported and "loanwatch_no_such_metric_total" not in exported
