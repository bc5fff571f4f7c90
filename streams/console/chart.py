"""Charts as inline SVG, drawn on the server: no script library, no network, the same picture in every browser.

Pure: counts in, markup out. Every text in the markup is escaped; numbers are formatted by this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final

from schemas.outputs import TIER_LABELS, TIERS, Tier
from streams.tail import CHINA_TZ

__all__ = [
    "TIER_COLOURS",
    "ChartWindow",
    "bucket_ms_for",
    "chart_window",
    "fill_series",
    "score_svg",
    "tier_chart_svg",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
#: Bucket widths a chart may use, narrowest first: round numbers an operator reads at a glance.
NICE_BUCKETS_MS: Final = tuple(
    m * MINUTE_MS for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
)
#: China time is UTC+8 all year; buckets start on China-time boundaries (a day bucket at local midnight).
CHINA_OFFSET_MS: Final = 8 * HOUR_MS
TIER_COLOURS: Final[Mapping[Tier, str]] = {"notice": "#c9a000", "attention": "#e07000", "warning": "#c0262d"}

_WIDTH: Final = 760
_HEIGHT: Final = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 16, 28, 34


@dataclass(frozen=True)
class ChartWindow:
    """The buckets a chart shows: ``count`` buckets of ``bucket_ms`` from ``start_ms`` (a bucket boundary)."""

    start_ms: int
    bucket_ms: int
    count: int

    @property
    def buckets(self) -> list[int]:
        """Start of every bucket, in epoch milliseconds."""
        return [self.start_ms + i * self.bucket_ms for i in range(self.count)]

    @property
    def end_ms(self) -> int:
        """End of the last bucket (exclusive)."""
        return self.start_ms + self.count * self.bucket_ms


def bucket_ms_for(span_ms: int, max_buckets: int = 48) -> int:
    """The narrowest nice bucket that covers ``span_ms`` in at most ``max_buckets`` buckets (a day at most)."""
    for width in NICE_BUCKETS_MS:
        if span_ms <= width * max_buckets:
            return width
    return NICE_BUCKETS_MS[-1]


def bucket_start(ms: int, bucket_ms: int) -> int:
    """Start of the China-time-aligned bucket that holds ``ms``."""
    return (ms + CHINA_OFFSET_MS) // bucket_ms * bucket_ms - CHINA_OFFSET_MS


def chart_window(oldest_ms: int, newest_ms: int, max_span_ms: int, max_buckets: int = 48) -> ChartWindow:
    """Buckets over ``[oldest_ms, newest_ms]``, or over the last ``max_span_ms`` up to ``newest_ms`` if longer."""
    start = max(oldest_ms, newest_ms - max_span_ms)
    width = bucket_ms_for(newest_ms - start, max_buckets)
    first = bucket_start(start, width)
    return ChartWindow(first, width, (bucket_start(newest_ms, width) - first) // width + 1)


def fill_series(rows: Iterable[tuple[str, int, int]], window: ChartWindow) -> dict[Tier, list[int]]:
    """Counts per tier in every bucket of ``window`` (0 where none), from ``(tier, bucket_start_ms, count)`` rows.

    Rows outside the window or of an unknown tier are left out.
    """
    series: dict[Tier, list[int]] = {tier: [0] * window.count for tier in TIERS}
    for tier, start, count in rows:
        index, rest = divmod(start - window.start_ms, window.bucket_ms)
        if tier in series and rest == 0 and 0 <= index < window.count:
            series[tier][index] += count
    return series


def _label(ms: int, with_date: bool = True) -> str:
    at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(CHINA_TZ)
    return at.strftime("%m-%d %H:%M" if with_date else "%H:%M")


def _x(i: int, n: int) -> float:
    inner = _WIDTH - _LEFT - _RIGHT
    return _LEFT + (inner * i / (n - 1) if n > 1 else inner / 2)


def _y(value: float, top: float) -> float:
    inner = _HEIGHT - _TOP - _BOTTOM
    return _TOP + inner * (1 - value / top)


def _frame(title: str, y_top: float, y_format: str, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{_LEFT}" y1="{_HEIGHT - _BOTTOM}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{_HEIGHT - _BOTTOM}" stroke="#888"/>',
    ]
    for value in (0.0, y_top / 2, y_top):
        y = _y(value, y_top)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text class="y-label" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(format(value, y_format))}</text>"
        )
    for n, (x, text) in enumerate(x_labels):
        # The outer labels grow inwards, so they stay inside the picture.
        anchor = "start" if n == 0 and len(x_labels) > 1 else "end" if n == len(x_labels) - 1 > 0 else "middle"
        parts.append(
            f'<text class="x-label" x="{x:.1f}" y="{_HEIGHT - 12}" text-anchor="{anchor}" font-size="11">'
            f"{escape(text)}</text>"
        )
    return parts


def _x_labels(times: Sequence[int]) -> list[tuple[float, str]]:
    n = len(times)
    picks = sorted({0, n // 2, n - 1}) if n else []
    return [(_x(i, n), _label(times[i])) for i in picks]


def tier_chart_svg(series: Mapping[Tier, Sequence[int]], window: ChartWindow) -> str:
    """Alerts per tier per bucket: one ``<g class="series">`` per tier, a point per bucket, and a legend."""
    top = max([1, *(max(counts, default=0) for counts in series.values())])
    y_top = float(top if top % 2 == 0 else top + 1)  # even, so the middle grid line is a whole count
    parts = _frame("Alerts per tier over time (China time)", y_top, ".0f", _x_labels(window.buckets))
    for n, tier in enumerate(t for t in TIERS if t in series):
        counts = series[tier]
        colour = TIER_COLOURS[tier]
        points = [(_x(i, len(counts)), _y(c, y_top)) for i, c in enumerate(counts)]
        parts.append(f'<g class="series" data-tier="{tier}" data-total="{sum(counts)}">')
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
        )
        for (x, y), start, count in zip(points, window.buckets, counts, strict=True):
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}" data-count="{count}">'
                f"<title>{escape(f'{TIER_LABELS[tier]} {tier}, {_label(start)}: {count}')}</title></circle>"
            )
        parts.append("</g>")
        legend_x = _LEFT + 8 + n * 150
        parts.append(
            f'<rect x="{legend_x}" y="8" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{legend_x + 14}" y="17" font-size="12">'
            f"{escape(f'{TIER_LABELS[tier]} {tier}: {sum(counts)}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def score_svg(points: Sequence[tuple[int, float]]) -> str:
    """A customer's fused score over time (``(ts_ms, score)``, oldest first) on a fixed 0..1 axis."""
    parts = _frame("Score history (China time)", 1.0, ".1f", _x_labels([ts for ts, _ in points]))
    if points:
        xy = [(_x(i, len(points)), _y(min(max(s, 0.0), 1.0), 1.0)) for i, (_, s) in enumerate(points)]
        parts.append('<g class="series" data-series="score">')
        parts.append(
            '<polyline fill="none" stroke="#2c5aa0" stroke-width="2" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}"/>'
        )
        for (x, y), (ts, score) in zip(xy, points, strict=True):
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2c5aa0">'
                f"<title>{escape(f'{_label(ts)}: {score:.3f}')}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
