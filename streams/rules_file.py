"""Load the rule set from a YAML file, rejecting a bad one with the field and the reason before anything starts."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.rules import RuleSet


class RulesFileError(ValueError):
    """The rules file cannot be read or does not validate; the message names the file, field and reason."""


def load_rules(path: Path | None) -> RuleSet:
    """The rule set in ``path``, or the built-in defaults when ``path`` is None."""
    if path is None:
        return RuleSet()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return RuleSet.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise RulesFileError(f"{path}: {problems}") from exc
