"""The console's aiohttp app: pages, the JSON they poll, and the two static files.

ClickHouse calls block (both backends are synchronous), so each runs in a worker thread. A ClickHouse error
answers 503 with its message; a bad parameter answers 400 naming it. Responses carry a strict
Content-Security-Policy: scripts only from this server, so data shown on a page can never run as code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Final

import aiohttp
from aiohttp import web

from schemas import serde
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.errors import ClickHouseError
from streams.console import pages, queries
from streams.console.chart import HOUR_MS, fill_series, tier_chart_svg
from streams.console.filters import FeedFilter, InvalidParameter, customer_id_or_error
from streams.console.profile_client import lookup_profile

__all__ = ["ConsoleConfig", "create_console_app"]

_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_STATIC: Final = {"console.js": "text/javascript", "console.css": "text/css"}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console reads: a ClickHouse backend, and the profile API's base URL (None: not configured).

    ``engine`` is how the page names the ClickHouse it reads (engine and version, never a URL: URLs carry
    passwords). The chart covers at most ``chart_span_ms`` of event time, up to the newest alert.
    """

    backend: ClickHouseBackend
    engine: str
    profile_api_url: str | None = None
    chart_span_ms: int = 24 * HOUR_MS


CONFIG: Final = web.AppKey("config", ConsoleConfig)
HTTP: Final = web.AppKey("http", aiohttp.ClientSession)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=serde.dumps(data), status=status, content_type="application/json")


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _failure(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return _json({"error": message}, status)
    return _html(pages.error_page(status, message, request.app[CONFIG].engine), status)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; bad parameters → 400, ClickHouse failures → 503 (JSON under /api)."""
    try:
        response = await handler(request)
    except InvalidParameter as exc:
        response = _failure(request, 400, str(exc))
    except ClickHouseError as exc:
        response = _failure(request, 503, f"ClickHouse did not answer: {exc}")
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def feed(request: web.Request) -> web.Response:
    """``/``: the feed page (filters from the query string)."""
    config = request.app[CONFIG]
    f = FeedFilter.from_query(request.query)
    rules, products = await asyncio.to_thread(queries.filter_options, config.backend)
    return _html(pages.feed_page(f, rules, products, config.engine))


def _feed_data(config: ConsoleConfig, f: FeedFilter) -> dict[str, Any]:
    backend = config.backend
    alerts = queries.feed_alerts(backend, f)
    counted = queries.tier_counts(backend, f, config.chart_span_ms)
    chart: dict[str, Any] = {"svg": "", "bucket_ms": None, "buckets": [], "series": {}}
    if counted is not None:
        window, rows = counted
        series = fill_series(rows, window)
        if f.tier is not None:
            series = {f.tier: series[f.tier]}
        chart = {"svg": tier_chart_svg(series, window), "bucket_ms": window.bucket_ms, "buckets": window.buckets,
                 "series": series}
    return {
        "filter": f.as_query(),
        "alerts": [pages.alert_json(a) for a in alerts],
        "top_rules": [pages.rule_json(r) for r in queries.top_rules(backend, f)],
        "chart": chart,
    }


async def feed_api(request: web.Request) -> web.Response:
    """``/api/feed``: newest alerts, the per-tier chart (SVG and counts) and top rules, under the filters."""
    config = request.app[CONFIG]
    f = FeedFilter.from_query(request.query)
    return _json(await asyncio.to_thread(_feed_data, config, f))


async def _customer(request: web.Request) -> tuple[queries.CustomerRecord, Any]:
    config = request.app[CONFIG]
    customer_id = customer_id_or_error(request.match_info["customer_id"])
    record, lookup = await asyncio.gather(
        asyncio.to_thread(queries.customer_record, config.backend, customer_id),
        lookup_profile(request.app.get(HTTP), config.profile_api_url, customer_id),
    )
    return record, lookup


async def customer(request: web.Request) -> web.Response:
    """``/customers/{id}``: everything known about one customer (404 when nothing is)."""
    record, lookup = await _customer(request)
    status = 200 if record.known or lookup.view is not None else 404
    return _html(pages.customer_page(record, lookup, request.app[CONFIG].engine), status)


async def customer_api(request: web.Request) -> web.Response:
    """``/api/customers/{id}``: the customer page's data as JSON."""
    record, lookup = await _customer(request)
    status = 200 if record.known or lookup.view is not None else 404
    return _json({**asdict(record), "profile_api": asdict(lookup)}, status)


async def health(request: web.Request) -> web.Response:
    """``/api/health``: the engine the console reads (answers once ClickHouse does)."""
    config = request.app[CONFIG]
    version = await asyncio.to_thread(config.backend.version)
    return _json({"engine": config.engine, "version": ".".join(map(str, version))})


async def static(request: web.Request) -> web.Response:
    """The console's script and style sheet, from the package."""
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    text = resources.files("streams.console").joinpath("static", name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=_STATIC[name], charset="utf-8")


async def _open_http(app: web.Application) -> None:
    if app[CONFIG].profile_api_url is not None:
        app[HTTP] = aiohttp.ClientSession()


async def _close_http(app: web.Application) -> None:
    if HTTP in app:
        await app[HTTP].close()


def create_console_app(config: ConsoleConfig) -> web.Application:
    """A fresh console app over ``config`` (the caller owns and closes the backend)."""
    app = web.Application(middlewares=[_guard])
    app[CONFIG] = config
    app.on_startup.append(_open_http)
    app.on_cleanup.append(_close_http)
    app.router.add_get("/", feed)
    app.router.add_get("/api/feed", feed_api)
    app.router.add_get("/api/health", health)
    app.router.add_get("/customers/{customer_id}", customer)
    app.router.add_get("/api/customers/{customer_id}", customer_api)
    app.router.add_get("/static/{name}", static)
    return app
