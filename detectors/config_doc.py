"""The risk engine's configuration reference, rendered from :class:`~detectors.engine.EngineConfig` itself.

:func:`render_reference` returns the Markdown of ``docs/configuration.md``: an example rules file, then per
section of the rule set the detector it configures, what that detector outputs (its ``detector_id`` and reason
codes) and a table of every field with its type, the engine's default and its description. Everything except the
reason-code meanings and the example is read from the models (fields, types, constraints, descriptions,
defaults of an ``EngineConfig()`` instance, docstrings), so the reference cannot drift from the code unnoticed:
a unit test compares the committed file with this output, and ``python -m streams.config_doc_cli --check
docs/configuration.md`` does the same in CI. Pure: no I/O, the caller writes the string.

Example:
    >>> text = render_reference()
    >>> text.splitlines()[2]
    '# Risk engine configuration reference'
    >>> "| `multi_lending.band_7d.notice` | number > 0 | `8.0` |" in text
    True
    >>> undocumented()
    []
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

import detectors.burst
import detectors.decision
import detectors.entities.entity_state
import detectors.entities.propagation
import detectors.entities.rings
import detectors.models.anomaly
import detectors.models.delinquency
import detectors.rules.limit_usage
import detectors.rules.multi_lending
import detectors.rules.repayment
import detectors.rules.sequence
from detectors.base import DetectorScore
from detectors.decision.episodes import RULE_ID as FUSED_RULE_ID
from detectors.engine import BURST_DETECTOR_ID, EngineConfig
from detectors.entities.propagation import RING_DETECTOR_ID
from detectors.rules import LimitUsageDetector, MultiLendingDetector, RepaymentDetector, SequenceDetector
from schemas.outputs import LimitAction, Reason

__all__ = [
    "DETECTORS",
    "DOC_PATH",
    "EXAMPLE_RULES_YAML",
    "REGENERATE",
    "DetectorDoc",
    "FieldDoc",
    "engine_fields",
    "fields",
    "render_reference",
    "undocumented",
]

DOC_PATH: Final = "docs/configuration.md"
"""Where the rendered reference is committed, relative to the repository root."""

REGENERATE: Final = f"python -m streams.config_doc_cli > {DOC_PATH}"

EXAMPLE_RULES_YAML: Final = """\
# rules.yaml: `loanwatch rules check rules.yaml`, then `loanwatch rules push rules.yaml`
version: 2                    # of the whole rule set: recorded on every fused alert, must grow with every push
burst:
  version: 2                  # burst alerts record their own rule's version
  thresholds: {notice: 4}     # a burst notice from 4 applications in the window (default 3)
decision:
  fusion:
    products:                 # cash loans alert earlier
      cash_loan: {thresholds: {notice: 0.38, attention: 0.55, warning: 0.8}}
"""
"""A small rules file: a new version, one changed threshold and a product override (validated by a unit test)."""

_INLINE_MAX: Final = 60  # longer defaults are shown as a YAML block below the table


@dataclass(frozen=True, slots=True)
class DetectorDoc:
    """What the reference says about the detector one section of :class:`EngineConfig` configures.

    ``summary``: the object (module or class) whose docstring's first paragraph introduces the detector;
    ``sources``: the modules that build its reasons (a unit test checks ``reasons`` against their code);
    ``output``: a sentence on what it emits, formatted with ``detector_id`` and ``weight`` (its fusion weight).
    """

    section: str
    summary: object
    detector_id: str
    sources: tuple[str, ...]
    output: str
    reasons: tuple[tuple[str, str], ...]


_CONFIG: Final = EngineConfig()

_RULE_OUTPUT: Final = (
    "Detector `{detector_id}` returns a `DetectorScore` (score in [0, 1] and reasons) at every scored event; "
    "fusion weighs it by `{weight}` (`decision.fusion.weights`). It raises no alert of its own."
)
_MODEL_OUTPUT: Final = (
    "Detector `{detector_id}` returns a `DetectorScore` (score in [0, 1] and reasons); it scores 0 until "
    "`warm_up` is reached. In the engine a score below `explain_threshold` counts as 0 in fusion, which weighs "
    "it by `{weight}` (`decision.fusion.weights`). It raises no alert of its own."
)

DETECTORS: Final[Mapping[str, DetectorDoc]] = {
    d.section: d
    for d in (
        DetectorDoc(
            "burst",
            detectors.burst,
            BURST_DETECTOR_ID,
            ("detectors.burst", "detectors.engine"),
            "Raises its own alerts: `rule_id` `{detector_id}`, tiers by application count, `rule_version` "
            "`burst.version`. It also feeds fusion as detector `{detector_id}`: the count graded between "
            "`thresholds.notice` and `thresholds.warning`, scaled to at most `burst_fusion_cap` and weighed by "
            "`{weight}`, so a burst alone never raises a fused alert.",
            (
                ("applications_in_window", "`applications_<window_minutes>m`: applications in the window, "
                 "against the tier's threshold (alerts) or `thresholds.notice` (fusion)."),
                ("distinct_products", "`distinct_products_<window_minutes>m`: products applied for in the "
                 "window (threshold 0, context only); alerts only."),
            ),
        ),
        DetectorDoc(
            "multi_lending",
            detectors.rules.multi_lending,
            MultiLendingDetector.detector_id,
            ("detectors.rules.multi_lending",),
            _RULE_OUTPUT,
            (
                ("multi_lending_inquiries", "`inquiries_weighted_7d` / `inquiries_weighted_30d`: the weighted "
                 "inquiry count against the band's notice or warning threshold; one per horizon at notice."),
            ),
        ),
        DetectorDoc(
            "sequence",
            detectors.rules.sequence,
            SequenceDetector.detector_id,
            ("detectors.rules.sequence",),
            _RULE_OUTPUT,
            (
                ("sequence_chain", "`chain_<name>`: steps matched against the chain's number of steps; one per "
                 "chain with at least two steps matched within its span."),
            ),
        ),
        DetectorDoc(
            "limit_usage",
            detectors.rules.limit_usage,
            LimitUsageDetector.detector_id,
            ("detectors.rules.limit_usage",),
            _RULE_OUTPUT,
            (
                ("limit_exhaustion", "`drawdown_limit_share_max_<horizon>`: the largest drawdown's share of the "
                 "available limit against `share`."),
                ("night_drawdown", "`night_drawdowns_<horizon>`: drawdowns 00:00-06:00 UTC+8 against "
                 "`night_drawdowns`."),
            ),
        ),
        DetectorDoc(
            "repayment",
            detectors.rules.repayment,
            RepaymentDetector.detector_id,
            ("detectors.rules.repayment",),
            _RULE_OUTPUT,
            (
                ("dpd_bucket", "`dpd_bucket`: the current bucket (1-4 for M1-M4+), threshold 1."),
                ("dpd_roll", "`dpd_rolls_30d`: upward bucket rolls in 30 days, threshold 1."),
                ("missed_payments", "`missed_payments_30d`: missed installments in 30 days, threshold 1."),
                ("partial_payments", "`partial_payments_30d`: partial payments in 30 days, threshold 1."),
                ("cured", "`dpd_cures_30d`: back to M0 after being delinquent; the score was multiplied by "
                 "`cure_factor`."),
            ),
        ),
        DetectorDoc(
            "anomaly",
            detectors.models.anomaly,
            _CONFIG.anomaly.detector_id,
            ("detectors.models.anomaly",),
            _MODEL_OUTPUT,
            (
                ("profile_anomaly", "one per feature for the `top_reasons` features furthest from their usual "
                 "range: the raw value against the range's edge (running mean ± `usual_z` std)."),
            ),
        ),
        DetectorDoc(
            "delinquency",
            detectors.models.delinquency,
            _CONFIG.delinquency.detector_id,
            ("detectors.models.delinquency",),
            _MODEL_OUTPUT + " Its probability also sets the customer's grade (`decision.grades`).",
            (
                ("delinquency_probability", "`delinquency_probability`: the predicted probability of reaching "
                 "`dpd_threshold` days past due, against `explain_threshold`."),
            ),
        ),
        DetectorDoc(
            "decision",
            detectors.decision,
            FUSED_RULE_ID,
            ("detectors.decision.episodes",),
            "Fuses every detector's score into one customer score and tier and raises alerts with `rule_id` "
            "`{detector_id}` (`rule_version`: the rule set's `version`), one per tier and episode; recommends "
            "limit actions ({actions}) and grades customers A-E.",
            (
                ("fused_risk_score", "`fused_risk_score`: the fused score against the tier's threshold; first "
                 "reason of every `{detector_id}` alert, followed by the detectors' own reasons by contribution "
                 "(at most `fusion.max_reasons`)."),
            ),
        ),
        DetectorDoc(
            "entities",
            detectors.entities.entity_state,
            "entity_links",
            ("detectors.entities.entity_state",),
            "Per entity (device, IP, network, bank card, phone, address book of at least "
            "`contact_list.min_contacts` contacts) the distinct customers within each horizon; once "
            "an entity has `min_customers` live customers every live pair is a link on `risk.links.v1` (sent "
            "once, refreshed after `refresh_minutes`). Above `max_customers` the entity is public (carrier NAT, "
            "public Wi-Fi) and links nobody. It scores nothing itself: links feed the ring detector.",
            (),
        ),
        DetectorDoc(
            "rings",
            detectors.entities.rings,
            "fraud_ring",
            ("detectors.entities.ring_scoring", "detectors.entities.rings"),
            "Joins live links into rings (connected groups of at least `min_size` customers) and raises ring "
            "alerts (`rule_id` `fraud_ring`, with the ring id, every member and the shared entities) by the ring "
            "score: size, kinds shared and members' own tiers. Each member is sent its ring score, which its "
            "own fusion weighs as detector `ring_membership` (see [`ring_propagation`](#ring_propagation)).",
            (
                ("ring_size", "`ring_size`: members of the ring against `min_size`; the message names the ring, its "
                 "entities and kinds."),
                ("ring_risky_members", "`risky_members`: other members at attention or warning (threshold 1)."),
                ("ring_member", "`ring_score`: the score propagated to one member (threshold 0); the message names "
                 "the ring, its size, the entities the member shares and the risky members."),
            ),
        ),
        DetectorDoc(
            "ring_propagation",
            detectors.entities.propagation,
            RING_DETECTOR_ID,
            ("detectors.entities.propagation",),
            "Detector `{detector_id}` returns the score of the ring the customer belongs to (sent by the ring "
            "agent) while the membership is fresh; fusion weighs it by `{weight}` (`decision.fusion.weights`). "
            "It raises no alert of its own: a hot ring raises each member's fused alert.",
            (
                ("ring_member", "`ring_score`: the ring's score (threshold 0, context only); the message names "
                 "the ring, its size and the entities the member shares."),
            ),
        ),
    )
}
"""The detector behind each section of :class:`EngineConfig`, in the order of the reference."""


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One row of the reference.

    ``path`` is dotted from the rule set's root; ``[]`` stands for every item of a list and ``<key>`` for every
    key of a map. ``group``: the field is a nested model (its own fields follow). ``default`` is JSON-compatible;
    ``has_default`` is false for a field every list item or map value must set.
    """

    path: str
    type: str
    description: str | None
    has_default: bool
    default: Any = None
    group: bool = False


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    return _md(" ".join(text.split("\n\n", 1)[0].split()))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _md(text: str) -> str:
    """A docstring's reST roles and literals as Markdown."""
    text = re.sub(r":[a-z]+:`~?(?:[\w.]+\.)?(\w+)`", r"`\1`", text)
    return text.replace("``", "`")


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    return get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else None


def _item_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model inside ``X | None``, ``tuple[X, ...]`` or ``dict[K, X]``, with the path suffix of its fields."""
    args = get_args(annotation)
    origin = get_origin(annotation)
    if (union := _union_args(annotation)) is not None:
        models = [m for a in union if (m := _model(a)) is not None]
        return (models[0], ".") if len(models) == 1 else None
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and (m := _model(args[0])) is not None:
        return m, "[]."
    if origin is dict and (m := _model(args[1])) is not None:
        return m, ".<key>."
    return None


def _num(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _constraints(metadata: list[Any]) -> str:
    lower = upper = pattern = None
    sizes: list[str] = []
    flat = [inner for m in metadata for inner in (m.metadata if isinstance(m, FieldInfo) else [m])]
    for m in flat:
        if isinstance(m, annotated_types.Ge):
            lower = f"[{_num(m.ge)}"
        elif isinstance(m, annotated_types.Gt):
            lower = f"({_num(m.gt)}"
        elif isinstance(m, annotated_types.Le):
            upper = f"{_num(m.le)}]"
        elif isinstance(m, annotated_types.Lt):
            upper = f"{_num(m.lt)})"
        elif isinstance(m, annotated_types.MinLen):
            sizes.insert(0, f"at least {m.min_length}")
        elif isinstance(m, annotated_types.MaxLen):
            sizes.append(f"at most {m.max_length}")
        elif getattr(m, "pattern", None):
            pattern = m.pattern
    parts = []
    if lower and upper:
        parts.append(f"in {lower}, {upper}")
    elif lower:
        parts.append(f"{'≥' if lower[0] == '[' else '>'} {lower[1:]}")
    elif upper:
        parts.append(f"{'≤' if upper[-1] == ']' else '<'} {upper[:-1]}")
    if pattern:
        parts.append(f"matching `{pattern}`")
    if sizes:
        parts.append(" and ".join(sizes) + (" item" if sizes[-1].endswith(" 1") else " items"))
    return ", ".join(parts)


_SCALARS: Final[Mapping[Any, str]] = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A readable type with its constraints, without ``|`` (it would split a Markdown table cell)."""
    metadata = list(metadata or [])
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        return _type_name(inner, [*extra, *metadata])
    constraints = _constraints(metadata)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        values = ", ".join(f"`{json.dumps(a)}`" for a in args)
        name = f"always {values}" if len(args) == 1 else f"one of {values}"
    elif (union := _union_args(annotation)) is not None:
        name = " or ".join("null" if a is type(None) else _type_name(a) for a in union)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        name = f"list of {_type_name(args[0])}"
    elif origin is tuple:
        kinds = {_type_name(a) for a in args}
        if len(kinds) == 1:
            first, _, rest = kinds.pop().partition(" ")
            name = f"list of {len(args)} {first}s {rest}".rstrip()
        else:
            name = "list of " + ", ".join(sorted(kinds))
    elif origin is dict:
        name = f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    elif (model := _model(annotation)) is not None:
        name = model.__name__
    else:
        name = _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))
    if not constraints:
        return name
    return f"{name}, {constraints}" if origin in (tuple, dict) or " " in name else f"{name} {constraints}"


def _jsonable(value: object) -> Any:
    return to_jsonable_python(value, exclude_none=True)


def fields(model: type[BaseModel], value: BaseModel | None = None, prefix: str = "") -> Iterator[FieldDoc]:
    """Every field of ``model``, depth first, nested models' fields after their own row.

    ``value``: the instance whose values are the defaults (None: the fields' own defaults).
    """
    for name, info in model.model_fields.items():
        path = prefix + name
        has_default = value is not None or not info.is_required()
        current = getattr(value, name) if value is not None else (
            info.get_default(call_default_factory=True) if has_default else None
        )
        description = info.description
        nested = _model(info.annotation)
        if nested is not None:
            yield FieldDoc(
                path, nested.__name__, description or _first_paragraph(nested.__doc__), has_default, group=True
            )
            yield from fields(nested, current if isinstance(current, BaseModel) else None, path + ".")
            continue
        yield FieldDoc(
            path, _type_name(info.annotation, list(info.metadata)), description, has_default, _jsonable(current)
        )
        item = _item_model(info.annotation)
        if item is not None:
            yield from fields(item[0], prefix=path + item[1])


def _sections() -> list[tuple[str, type[BaseModel] | None]]:
    return [(name, _model(info.annotation)) for name, info in EngineConfig.model_fields.items()]


def engine_fields(section: str | None = None) -> list[FieldDoc]:
    """The rows of one section of the engine's rule set (None: its top-level scalar fields)."""
    if section is None:
        top = [name for name, model in _sections() if model is None]
        return [f for f in fields(EngineConfig, _CONFIG) if f.path in top]
    model = _model(EngineConfig.model_fields[section].annotation)
    if model is None:
        raise ValueError(f"{section} is not a section of EngineConfig")
    return list(fields(model, getattr(_CONFIG, section), section + "."))


def undocumented(model: type[BaseModel] = EngineConfig) -> list[str]:
    """Paths of the fields of ``model`` (nested models' fields included) that have no description."""
    return [f.path for f in fields(model) if not f.description]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _inline(value: Any) -> str | None:
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if len(text) <= _INLINE_MAX else None


def _yaml_block(name: str, value: Any) -> list[str]:
    body = yaml.safe_dump({name: value}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)
    return ["```yaml", body.rstrip("\n"), "```"]


def _table(rows: list[FieldDoc]) -> list[str]:
    lines = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    blocks: list[str] = []
    for row in rows:
        description = _md(row.description) if row.description else "*(no description)*"
        if row.group:
            default = ""
        elif not row.has_default:
            default = "*required*"
        else:
            default = _inline(row.default) or "*below*"
            if _inline(row.default) is None:
                blocks += ["", f"Default of `{row.path}`:", "", *_yaml_block(row.path.rsplit(".", 1)[-1], row.default)]
        lines.append(f"| `{row.path}` | {_cell(row.type)} | {_cell(default)} | {_cell(description)} |")
    return lines + blocks


def _module_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _output(doc: DetectorDoc) -> list[str]:
    fusion = _CONFIG.decision.fusion
    actions = ", ".join(f"`{a}`" for a in get_args(LimitAction.model_fields["action"].annotation))
    values = {"detector_id": doc.detector_id, "weight": _num(fusion.weight_for(doc.detector_id)), "actions": actions}
    lines = [
        f"**Output.** {doc.output.format(**values)}",
        "",
        "| Reason code | Feature, value and threshold |",
        "|---|---|",
    ]
    lines += [f"| `{code}` | {_cell(meaning.format(**values))} |" for code, meaning in doc.reasons]
    sources = ", ".join(f"`{_module_path(m)}`" for m in doc.sources)
    return [*lines, "", f"Reasons are built in {sources}."]


def _intro() -> list[str]:
    reason_fields = ", ".join(f"`{name}`" for name in Reason.model_fields)
    score_fields = ", ".join(f"`{f.name}`" for f in dataclasses.fields(DetectorScore))
    score_doc = _first_paragraph(DetectorScore.__doc__)
    sections = ", ".join(f"[`{name}`](#{name})" for name, model in _sections() if model is not None)
    return [
        f"<!-- Generated from detectors.engine.EngineConfig by `{REGENERATE}`; do not edit. -->",
        "",
        "# Risk engine configuration reference",
        "",
        f"{_first_paragraph(EngineConfig.__doc__)} A rules file (YAML) or a `risk.rules.v1` record holds this "
        "configuration; every field has a default, so a file names only what it changes, and unknown keys are "
        "refused.",
        "",
        "Paths are dotted from the file's root; `[]` stands for every item of a list and `<key>` for any key of a "
        "map. Defaults are the engine's (`EngineConfig()`).",
        "",
        f"Sections: [top level](#top-level-fields), {sections}.",
        "",
        "## Example rules file",
        "",
        "```yaml",
        EXAMPLE_RULES_YAML.rstrip("\n"),
        "```",
        "",
        "A file is merged over these defaults key by key: naming one field of a section changes that field "
        "only, and a map (such as `decision.fusion.weights`) gains or replaces the keys it names. A list "
        "(such as `sequence.chains`) is replaced as a whole.",
        "",
        "## Detector output",
        "",
        f"Every detector returns a `{DetectorScore.__name__}` ({score_fields}), {_lower_first(score_doc)} "
        f"Every reason carries {reason_fields}; each section lists the "
        "reason codes its detector emits. Fusion combines the scores into the alerts and limit actions of the "
        "[`decision`](#decision) layer.",
    ]


def render_reference() -> str:
    """The Markdown configuration reference of the risk engine (the text of ``docs/configuration.md``)."""
    lines = _intro()
    lines += ["", "## Top-level fields", "", "The rule set's own fields.", "", *_table(engine_fields())]
    for name, model in _sections():
        if model is None:
            continue
        lines += ["", f"## {name}", ""]
        doc = DETECTORS.get(name)
        if doc is not None:
            lines += [_first_paragraph(getattr(doc.summary, "__doc__", None)), ""]
        lines += [f"Configured by `{model.__name__}`: {_first_paragraph(model.__doc__)}", ""]
        if doc is not None:
            lines += [*_output(doc), ""]
        lines += _table(engine_fields(name))
    return "\n".join(lines) + "\n"
