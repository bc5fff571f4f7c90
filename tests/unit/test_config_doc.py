"""The configuration reference (docs/configuration.md) is rendered from EngineConfig and cannot drift from it."""

from __future__ import annotations

import ast
import doctest
import importlib.util
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from detectors import config_doc
from detectors.config_doc import (
    DETECTORS,
    DOC_PATH,
    EXAMPLE_RULES_YAML,
    engine_fields,
    render_reference,
    undocumented,
)
from detectors.engine import Engine, EngineConfig
from detectors.rules import MultiLendingConfig
from streams import config_doc_cli
from streams.rules_file import load_rules

ROOT = Path(__file__).resolve().parents[2]


# -- drift ---------------------------------------------------------------------------------------------------------


def test_committed_reference_is_the_rendered_one() -> None:
    committed = (ROOT / DOC_PATH).read_text(encoding="utf-8")
    assert committed == render_reference(), f"{DOC_PATH} is stale: run `{config_doc.REGENERATE}`"


def _models_inside(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """Models in ``X | None``, ``tuple[X, ...]`` and ``dict[K, X]``, with the path suffix of their fields."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield arg, "."
    elif origin is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        yield args[0], "[]."
    elif origin is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        yield args[1], ".<key>."


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = prefix + name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaf_paths(annotation, path + ".")
            continue
        yield path
        for inner, suffix in _models_inside(annotation):
            yield from _leaf_paths(inner, path + suffix)


def test_every_leaf_field_of_the_engine_config_is_in_the_reference() -> None:
    text = render_reference()
    leaves = list(_leaf_paths(EngineConfig))
    assert len(leaves) > 80
    assert {
        "version",
        "multi_lending.band_7d.notice",
        "sequence.chains[].steps[].min_limit_share",
        "anomaly.features[].high",
        "decision.fusion.products.<key>.thresholds.warning",
        "decision.actions.rules[].factor",
    } <= set(leaves)
    missing = [path for path in leaves if f"\n| `{path}` |" not in text]
    assert missing == []


def _engine_value(path: str) -> Any:
    value: Any = EngineConfig()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_defaults_are_the_engines_not_the_config_classes() -> None:
    rows = [row for name in DETECTORS for row in engine_fields(name)] + engine_fields()
    leaves = [row for row in rows if not row.group and "[]" not in row.path and "<key>" not in row.path]
    assert len(leaves) > 50
    for row in leaves:
        assert row.default == to_jsonable_python(_engine_value(row.path), exclude_none=True), row.path
    text = render_reference()
    # EngineConfig overrides MultiLendingConfig's band_7d (6, 12) with (8, 16): the reference shows the engine's.
    assert "| `multi_lending.band_7d.notice` | number > 0 | `8.0` |" in text


def test_a_file_naming_one_field_of_a_section_keeps_the_engine_defaults_of_the_rest() -> None:
    engine = EngineConfig()
    config = EngineConfig.model_validate(
        {"multi_lending": {"band_30d": {"notice": 10, "warning": 20}}, "decision": {"fusion": {"weights": {"x": 1}}}}
    )
    assert config.multi_lending.band_7d == engine.multi_lending.band_7d != MultiLendingConfig().band_7d
    assert config.decision.fusion.weights == {**engine.decision.fusion.weights, "x": 1}
    assert config.limit_usage == engine.limit_usage and config.anomaly == engine.anomaly


# -- descriptions --------------------------------------------------------------------------------------------------


def test_every_field_has_a_description() -> None:
    assert undocumented() == [], "add description= to these fields (or, for classes owned elsewhere, a supplement)"
    assert "*(no description)*" not in render_reference()


class _Inner(BaseModel):
    x: int = Field(default=1, description="Documented.")
    y: int = 2


class _Item(BaseModel):
    z: str


class _Toy(BaseModel):
    a: int = Field(default=1, description="Documented.")
    b: int = 2
    inner: _Inner = Field(default_factory=_Inner)
    items: tuple[_Item, ...] = Field(default=(), description="Documented.")


def test_a_field_without_description_is_reported() -> None:
    # ``inner``: a nested model is described by its field's description or else its class docstring; _Inner has none
    assert undocumented(_Toy) == ["b", "inner", "inner.y", "items[].z"]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        return {k: v for key, value in data.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): data}


def _under(key: str, *prefixes: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def test_example_rules_file_validates_and_changes_only_what_it_says(tmp_path: Path) -> None:
    config = EngineConfig.model_validate(yaml.safe_load(EXAMPLE_RULES_YAML))
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_RULES_YAML, encoding="utf-8")
    assert load_rules(path) == config
    assert f"```yaml\n{EXAMPLE_RULES_YAML}```\n" in render_reference()

    default, example = _flat(EngineConfig().model_dump(mode="json")), _flat(config.model_dump(mode="json"))
    changed = {k for k in default.keys() | example.keys() if default.get(k, "?") != example.get(k, "?")}
    intended = ("version", "burst.version", "burst.thresholds.notice", "decision.fusion.products")
    assert sorted(k for k in changed if not _under(k, *intended)) == []
    assert [p for p in intended if not any(_under(k, p) for k in changed)] == []
    assert config.decision.fusion.weights == EngineConfig().decision.fusion.weights


# -- detectors and their outputs -----------------------------------------------------------------------------------


def test_every_section_of_the_engine_config_has_its_detector_documented() -> None:
    sections = [
        name
        for name, info in EngineConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    ]
    assert list(DETECTORS) == sections


def test_every_detector_the_engine_runs_is_documented() -> None:
    engine = Engine()
    models = engine.new_models(0)
    ids = {d.detector_id for d in engine.rules} | {models.anomaly.detector_id, models.delinquency.detector_id}
    assert ids <= {d.detector_id for d in DETECTORS.values()}


def _loop_values(name: str, node: ast.AST, parents: dict[ast.AST, ast.AST]) -> set[str]:
    """The string values a loop variable takes in ``for a, code, ... in ((...), ...)`` around ``node``."""
    up = parents.get(node)
    while up is not None:
        if isinstance(up, ast.For) and isinstance(up.target, ast.Tuple) and isinstance(up.iter, ast.Tuple | ast.List):
            names = [e.id if isinstance(e, ast.Name) else "" for e in up.target.elts]
            if name in names:
                i = names.index(name)
                values = {getattr(item.elts[i], "value", None) for item in up.iter.elts if isinstance(item, ast.Tuple)}
                assert all(isinstance(v, str) for v in values), f"{name}: not literal codes"
                return {str(v) for v in values}
        if isinstance(up, ast.FunctionDef) and name in {a.arg for a in up.args.args}:
            return set()  # a helper that passes its caller's code through (detectors.rules._common.reason)
        up = parents.get(up)
    raise AssertionError(f"cannot enumerate the reason codes in {name}")


def _reason_codes(path: Path) -> set[str]:
    """Codes of the ``reason("code", ...)`` and ``Reason(code="code", ...)`` calls in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    codes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "reason" and node.args:
            arg: ast.expr | None = node.args[0]
        elif node.func.id == "Reason":
            arg = next((k.value for k in node.keywords if k.arg == "code"), None)
        else:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            codes.add(arg.value)
        elif isinstance(arg, ast.Name):
            codes |= _loop_values(arg.id, node, parents)
        else:
            raise AssertionError(f"{path}:{node.lineno}: reason code is not enumerable")
    return codes


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin)


@pytest.mark.parametrize("section", list(DETECTORS))
def test_documented_reason_codes_are_the_ones_the_code_emits(section: str) -> None:
    doc = DETECTORS[section]
    emitted = set().union(*(_reason_codes(_source(m)) for m in doc.sources))
    assert {code for code, _ in doc.reasons} == emitted


def test_every_reason_code_in_detectors_is_documented() -> None:
    emitted = set().union(*(_reason_codes(p) for p in sorted((ROOT / "detectors").rglob("*.py"))))
    documented = {code for doc in DETECTORS.values() for code, _ in doc.reasons}
    assert emitted - documented == set()
    assert len(emitted) >= 14


# -- the command line and the module's own example -----------------------------------------------------------------


def test_check_passes_on_a_current_file_and_fails_on_a_stale_or_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = tmp_path / "configuration.md"
    current.write_text(render_reference(), encoding="utf-8")
    assert config_doc_cli.main(["--check", str(current)]) == 0

    stale = tmp_path / "stale.md"
    stale.write_text(render_reference().replace("`8.0`", "`6.0`", 1), encoding="utf-8")
    capsys.readouterr()
    assert config_doc_cli.main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert f"{stale}: differs from the engine configuration (first difference at line" in err
    assert config_doc.REGENERATE in err

    truncated = tmp_path / "truncated.md"
    truncated.write_text(render_reference().rstrip("\n"), encoding="utf-8")
    assert config_doc_cli.main(["--check", str(truncated)]) == 1
    assert "first difference at its end" in capsys.readouterr().err

    assert config_doc_cli.main(["--check", str(tmp_path / "absent.md")]) == 1
    assert "absent.md: missing" in capsys.readouterr().err


def test_module_entry_point_prints_the_reference_and_checks_the_committed_file() -> None:
    run = [sys.executable, "-m", "streams.config_doc_cli"]
    printed = subprocess.run(run, cwd=ROOT, capture_output=True, check=True)
    assert printed.stdout.decode("utf-8") == render_reference()
    checked = subprocess.run([*run, "--check", DOC_PATH], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_doctests() -> None:
    result = doctest.testmod(config_doc)
    assert result.attempted > 0 and result.failed == 0
