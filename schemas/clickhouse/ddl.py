"""ClickHouse DDL for loanwatch's tables, rendered for what the target engine supports.

The ``.sql`` files next to this module hold one ``CREATE TABLE IF NOT EXISTS`` each, with ``string.Template``
placeholders for the parts that differ between engines, and optional lines that end in ``-- requires FEATURE``
(kept, without the marker, only when that feature is on)::

    $database               the database, quoted
    $DateTimeMs             DateTime64(3, 'UTC')    | DateTime('UTC')
    $LowCardinalityString   LowCardinality(String)  | String
    $codec_time             CODEC(Delta, ZSTD(1))   | nothing     (timestamps, nearly sorted per customer)
    $codec_text             CODEC(ZSTD(3))          | nothing     (JSON and base64 payloads)

ClickHouse 18.16 (Debian's package) has none of DateTime64, TTL and codecs, and LowCardinality only behind a
setting (which clickhouse-driver would drop silently if unknown), so it gets plain types; no feature is ever
enabled through a setting. Every time column carries an explicit ``'UTC'`` zone, so partitions and text forms
do not depend on the server's zone, and every table keeps exact epoch milliseconds where it matters.

Pure: nothing here touches a database; the templates are read from this package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cache
from importlib.resources import files
from string import Template
from typing import Final

__all__ = ["TABLES", "Features", "render_ddl", "render_template", "template_values"]

#: The tables, in creation order; each has ``<name>.sql`` next to this module.
TABLES: Final[tuple[str, ...]] = (
    "events",
    "alerts",
    "dead_letters",
    "limit_actions",
    "profile_snapshots",
    "links",
    "customer_links",
    "rings",
    "ring_members",
)

_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_REQUIRES: Final = re.compile(r"\s*--\s*requires\s+(\w+)\s*$")


@dataclass(frozen=True)
class Features:
    """Which optional ClickHouse features the DDL may use."""

    datetime64: bool
    ttl: bool
    codecs: bool
    low_cardinality: bool

    @classmethod
    def for_version(cls, version: tuple[int, ...]) -> Features:
        """Derive the features of a ClickHouse (or chdb engine) version; ``(18, 16, 1)`` has none.

        The thresholds are the releases that made each feature usable without a setting: LowCardinality and
        codecs 19.3 (codecs appeared in 19.1, LowCardinality stopped being experimental in early 2019),
        TTL 19.6, DateTime64 20.1. A version between two thresholds only loses an optimisation.
        """
        return cls(
            datetime64=version >= (20, 1),
            ttl=version >= (19, 6),
            codecs=version >= (19, 3),
            low_cardinality=version >= (19, 3),
        )

    @classmethod
    def none(cls) -> Features:
        """Plain types only, as on ClickHouse 18.16."""
        return cls(datetime64=False, ttl=False, codecs=False, low_cardinality=False)

    @classmethod
    def all(cls) -> Features:
        """Every feature, as on modern servers and chdb."""
        return cls(datetime64=True, ttl=True, codecs=True, low_cardinality=True)

    def __str__(self) -> str:
        on = [f.name for f in fields(self) if getattr(self, f.name)]
        return "+".join(on) if on else "plain types (no datetime64/ttl/codecs/low_cardinality)"


def render_ddl(database: str, features: Features) -> list[str]:
    """Return ``CREATE DATABASE IF NOT EXISTS`` and one ``CREATE TABLE IF NOT EXISTS`` per table."""
    values = template_values(database, features)
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`"]
    for table in TABLES:
        statements.append(render_template(f"{table}.sql", values, features))
    return statements


def template_values(database: str, features: Features) -> dict[str, str]:
    """The placeholder values of every DDL template for ``database`` on an engine with ``features``."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"not a plain ClickHouse identifier: {database!r}")
    return {
        "database": f"`{database}`",
        "DateTimeMs": "DateTime64(3, 'UTC')" if features.datetime64 else "DateTime('UTC')",
        "LowCardinalityString": "LowCardinality(String)" if features.low_cardinality else "String",
        "codec_time": " CODEC(Delta, ZSTD(1))" if features.codecs else "",
        "codec_text": " CODEC(ZSTD(3))" if features.codecs else "",
    }


def render_template(path: str, values: dict[str, str], features: Features) -> str:
    """Render the template at ``path`` (relative to this package): placeholders filled, comments dropped."""
    return _keep_supported_lines(Template(_template(path)).substitute(values), features)


@cache
def _template(path: str) -> str:
    return files("schemas.clickhouse").joinpath(path).read_text(encoding="utf-8")


def _keep_supported_lines(text: str, features: Features) -> str:
    """Drop comment lines and the optional lines whose feature is off; strip the ``-- requires`` markers."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("--") or not line.strip():
            continue
        marker = _REQUIRES.search(line)
        if marker is not None:
            feature = marker.group(1)
            if feature not in {f.name for f in fields(features)}:
                raise ValueError(f"unknown feature in a DDL template: {feature!r}")
            if not getattr(features, feature):
                continue
            line = line[: marker.start()]
        kept.append(line.rstrip())
    return "\n".join(kept)
