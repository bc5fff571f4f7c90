"""Readers for the files under deploy/, shared by the deploy tests (no network, nothing started)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
K8S_DIR = DEPLOY / "k8s"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA_DIR = DEPLOY / "grafana"

#: The image every loanwatch role runs (compose services and Kubernetes containers alike).
LOANWATCH_IMAGE = "loanwatch"

_VARIABLE = re.compile(r"\bLOANWATCH_[A-Z0-9_]+")


def load_yaml_documents(path: Path) -> list[Any]:
    """Every document of a YAML file (``---`` separated), empty documents dropped."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def load_compose() -> dict[str, Any]:
    """The compose file, with YAML anchors and merge keys resolved (as compose resolves them)."""
    documents = load_yaml_documents(COMPOSE_FILE)
    assert len(documents) == 1, "compose.yaml holds exactly one document"
    compose: dict[str, Any] = documents[0]
    return compose


def settings_variables() -> set[str]:
    """Every environment variable Settings reads, nested models included (``LOANWATCH_TOPICS__ALERTS``)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"LOANWATCH_{name.upper()}__{sub.upper()}" for sub in annotation.model_fields)
        else:
            names.add(f"LOANWATCH_{name.upper()}")
    return names


def variables_named_in(text: str) -> set[str]:
    """The ``LOANWATCH_*`` names a text mentions."""
    return set(_VARIABLE.findall(text))


def read_env_file(path: Path) -> dict[str, str]:
    """A compose env file: ``KEY=value`` lines; blank lines and ``#`` comments skipped."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=value"
        values[key.strip()] = value.strip()
    return values


def committed_env_file(path: Path) -> Path:
    """The committed file behind an env file: itself, or its ``.example`` template for a secrets file."""
    return path if path.exists() else path.with_name(path.name + ".example")


def settings_from(env: dict[str, str], monkeypatch: Any) -> Settings:
    """Build Settings from exactly ``env`` (other ``LOANWATCH_*`` variables of the test process removed)."""
    import os

    for key in list(os.environ):
        if key.startswith("LOANWATCH_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()
