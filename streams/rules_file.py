"""Read and validate rule sets (YAML files, ``risk.rules.v1`` records) and allow-list files.

A bad input is rejected with the source, the field and the reason before anything uses it, e.g.
``rules.yaml: burst.thresholds.attention: attention (3) must be greater than notice (3)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from detectors.engine import EngineConfig
from schemas import serde
from schemas.allowlist import AllowListEntry

M = TypeVar("M", bound=BaseModel)


class RulesFileError(ValueError):
    """A rule set or allow-list cannot be read or does not validate; the message names source, field and reason."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
    )


def _validate(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise RulesFileError(f"{source}: {_problems(exc)}") from exc


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc


def load_rules(path: Path | None) -> EngineConfig:
    """The rule set in the YAML file ``path``, or the built-in defaults when ``path`` is None."""
    if path is None:
        return EngineConfig()
    return _validate(EngineConfig, _read_yaml(path), str(path))


def rules_from_record(value: bytes, source: str) -> EngineConfig:
    """The rule set in one ``risk.rules.v1`` record (JSON); ``RulesFileError`` if it does not validate."""
    try:
        data = serde.loads(value)
    except serde.JSONDecodeError as exc:
        raise RulesFileError(f"{source}: not valid JSON: {exc}") from exc
    return _validate(EngineConfig, data, source)


def load_allowlist(path: Path) -> list[AllowListEntry]:
    """The entries of an allow-list YAML file: a list of entries, or ``{entries: [...]}``."""
    data = _read_yaml(path)
    if isinstance(data, dict) and set(data) == {"entries"}:
        data = data["entries"]
    if not isinstance(data, list):
        raise RulesFileError(f"{path}: expected a list of allow-list entries (or a mapping with key 'entries')")
    entries = [_validate(AllowListEntry, item, f"{path}: entry {i + 1}") for i, item in enumerate(data)]
    keys = [f"{e.kind}:{e.value}" for e in entries]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise RulesFileError(f"{path}: entries listed twice: {', '.join(duplicates)}")
    return entries
