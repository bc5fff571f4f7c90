"""deploy/: the image recipe and the compose stack parse, validate and agree with the code they run.

Nothing here builds or starts a container (there is no container engine on the CI machine): the files are
checked against the compose specification's JSON Schema, the Settings model, the CLI and the Kafka version the
project tests against.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import typer.main
from dockerfile_parse import DockerfileParser

from streams.cli import app as cli_app
from streams.local.kafka_broker import KAFKA_VERSION
from tests.unit.deploy_files import (
    COMPOSE_DIR,
    DEPLOY,
    LOANWATCH_IMAGE,
    ROOT,
    committed_env_file,
    load_compose,
    load_yaml_documents,
    read_env_file,
    settings_from,
    settings_variables,
    variables_named_in,
)

#: Variable names that hold credentials: never inline in compose.yaml or the image.
SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "CLICKHOUSE_URL")


def _compose_validator() -> jsonschema.Draft7Validator:
    # check-jsonschema ships the compose-spec schema (Apache-2.0, compose-spec/compose-spec) for offline use;
    # it is written in draft 07 (its $schema URL lacks the trailing '#' jsonschema looks up, hence explicit).
    text = (resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert "draft-07" in schema["$schema"]
    return jsonschema.Draft7Validator(schema)


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load_compose()["services"]
    return services


def _loanwatch_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if s["image"].split(":")[0] == LOANWATCH_IMAGE}


def _env_files(service: dict[str, Any]) -> list[Path]:
    entries = service.get("env_file", [])
    return [COMPOSE_DIR / (e["path"] if isinstance(e, dict) else e) for e in entries]


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    """What a service's process sees: its env files (templates for secrets) and then its `environment`."""
    env: dict[str, str] = {}
    for path in _env_files(service):
        env.update(read_env_file(committed_env_file(path)))
    env.update({k: str(v) for k, v in service.get("environment", {}).items()})
    return env


def _assert_in_repo_or_a_kept_out_template(path: Path, user: str) -> None:
    """``path`` is committed, or it is a host-only secret: its ``.example`` template is, and git ignores it."""
    if path.exists():
        return
    template = committed_env_file(path)
    assert template.exists(), f"{user}: neither {path.name} nor {template.name} exists"
    ignored = (path.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert any(fnmatch.fnmatch(path.name, pattern) for pattern in ignored), f"{path.name} would be committed"


def _cli_commands() -> set[str]:
    return set(typer.main.get_command(cli_app).commands)  # type: ignore[attr-defined]


# --- every file ---------------------------------------------------------------------------------------------


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert COMPOSE_DIR / "compose.yaml" in files
    for path in files:
        assert load_yaml_documents(path), f"{path.relative_to(ROOT)} is empty"


def test_every_loanwatch_variable_in_deploy_files_is_a_setting() -> None:
    known = settings_variables()
    # deploy/local holds the developer scripts, whose own variables (the venv's place) are not settings.
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "local" not in p.relative_to(DEPLOY).parts[:1]]
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in variables_named_in(path.read_text(encoding="utf-8", errors="replace"))
        if name not in known
    }
    assert not unknown, f"not a field of streams.settings.Settings: {sorted(unknown)}"


def test_settings_variables_include_nested_topic_names() -> None:
    names = settings_variables()
    assert {"LOANWATCH_KAFKA_BOOTSTRAP", "LOANWATCH_TOPICS__ALERTS"} <= names
    assert "LOANWATCH_TOPICS" not in names  # the nested model is set field by field


# --- the image ----------------------------------------------------------------------------------------------


def _dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def test_dockerfile_builds_from_python_311_slim_and_runs_the_console_script() -> None:
    parser = _dockerfile()
    bases = [i["value"].split()[0] for i in parser.structure if i["instruction"] == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)
    entrypoints = [json.loads(i["value"]) for i in parser.structure if i["instruction"] == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert entrypoints[-1] == [LOANWATCH_IMAGE]
    assert LOANWATCH_IMAGE in scripts


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    structure = _dockerfile().structure
    last_from = max(i for i, s in enumerate(structure) if s["instruction"] == "FROM")
    users = [s["value"] for s in structure[last_from:] if s["instruction"] == "USER"]
    assert users, "the final stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes' runAsNonRoot can check it


def test_dockerfile_copies_only_files_that_exist_and_the_build_context_keeps() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    kept = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for instruction in _dockerfile().structure:
        if instruction["instruction"] != "COPY" or "--from=" in instruction["value"]:
            continue
        *sources, _target = instruction["value"].split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert any(fnmatch.fnmatch(source, pattern) for pattern in kept), f"{source} is not in the context"


def test_dockerfile_bakes_in_no_secret() -> None:
    for instruction in _dockerfile().structure:
        if instruction["instruction"] in ("ENV", "ARG"):
            assert not any(marker in instruction["value"].upper() for marker in SECRET_MARKERS), instruction


# --- compose ------------------------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _compose_validator().iter_errors(load_compose())
    ]
    assert not errors


def test_compose_schema_check_rejects_a_misspelt_key() -> None:
    broken = load_compose()
    broken["services"]["worker"]["depends_in"] = broken["services"]["worker"].pop("depends_on")
    assert not _compose_validator().is_valid(broken)


def test_compose_kafka_is_the_apache_image_of_the_tested_version() -> None:
    assert _services()["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_compose_images_are_pinned() -> None:
    for name, service in _services().items():
        image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest", f"{name}: {service['image']} is not pinned to a version"


def test_compose_loanwatch_services_build_the_deploy_image_and_run_real_commands() -> None:
    services = _loanwatch_services()
    assert {"init", "worker", "writer", "console"} <= set(services)
    known = _cli_commands()
    for name, service in services.items():
        build = service["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert (context / build["dockerfile"]) == DEPLOY / "Dockerfile", name
        assert service["command"][0] in known, f"{name}: loanwatch {service['command'][0]} does not exist"


def test_compose_named_volumes_networks_and_bind_mounts_exist() -> None:
    compose = load_compose()
    volumes, networks = set(compose.get("volumes", {})), set(compose.get("networks", {}))
    for name, service in compose["services"].items():
        assert set(service.get("networks", [])) <= networks, name
        for mount in service.get("volumes", []):
            if isinstance(mount, dict):
                assert mount["type"] in ("tmpfs", "volume"), f"{name}: use the short form for bind mounts"
                assert mount["type"] == "tmpfs" or mount["source"] in volumes, name
                continue
            source = mount.split(":")[0]
            if source.startswith("."):
                _assert_in_repo_or_a_kept_out_template(COMPOSE_DIR / source, f"{name}: bind mount")
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"


def test_compose_env_files_are_committed_or_templates_of_secrets_kept_out_of_git() -> None:
    for name, service in _services().items():
        for path in _env_files(service):
            _assert_in_repo_or_a_kept_out_template(path, f"{name}: env file")


def test_compose_keeps_credentials_out_of_inline_environment() -> None:
    for name, service in _services().items():
        inline = [key for key in service.get("environment", {}) if any(m in key.upper() for m in SECRET_MARKERS)]
        assert not inline, f"{name}: {inline} belong in an env file under secrets/"


def test_compose_start_order_waits_for_health_and_for_init() -> None:
    services = _services()
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck to wait for"
            if condition["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} must run once"
    for name in ("worker", "writer", "console"):
        assert services[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}


def test_compose_worker_scales_to_several_replicas() -> None:
    worker = _services()["worker"]
    assert worker["deploy"]["replicas"] >= 2
    # A fixed container name or host port would make `--scale worker=N` fail.
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("name", ["init", "worker", "writer", "console"])
def test_compose_service_environment_is_accepted_by_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(_service_env(_services()[name]), monkeypatch)
    assert settings.kafka_bootstrap == "kafka:9092"
    if name != "worker":
        assert settings.clickhouse_url is not None


def test_compose_each_role_connects_to_clickhouse_as_its_own_user(monkeypatch: pytest.MonkeyPatch) -> None:
    users = {}
    for name in ("init", "writer", "console"):
        url = settings_from(_service_env(_services()[name]), monkeypatch).clickhouse_url
        assert url is not None
        users[name] = url.get_secret_value().split("//")[1].split(":")[0]
    assert users == {"init": "loanwatch_admin", "writer": "loanwatch_writer", "console": "loanwatch_analyst"}


def test_compose_healthchecks_probe_the_metrics_ports_settings_open(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    for name, field in (("worker", "worker_metrics_port"), ("writer", "writer_metrics_port")):
        port = getattr(settings_from(_service_env(services[name]), monkeypatch), field)
        assert port > 0, f"{name}: metrics are off"
        assert f"127.0.0.1:{port}/metrics" in " ".join(services[name]["healthcheck"]["test"]), name


def test_compose_mounts_the_prometheus_and_grafana_files_where_they_are_read() -> None:
    services = _services()
    prometheus_mounts = dict(m.split(":")[:2] for m in services["prometheus"]["volumes"])
    assert prometheus_mounts["../prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    grafana_mounts = dict(m.split(":")[:2] for m in services["grafana"]["volumes"])
    provider = load_yaml_documents(DEPLOY / "grafana/provisioning/dashboards/loanwatch.yaml")[0]
    assert grafana_mounts["../grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert grafana_mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / PurePosixPath(home).name).exists()


def test_compose_console_asks_the_workers_profile_api(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    worker = settings_from(_service_env(services["worker"]), monkeypatch)
    console = settings_from(_service_env(services["console"]), monkeypatch)
    assert worker.web_port is not None
    assert console.profile_api_url == f"http://worker:{worker.web_port}"
