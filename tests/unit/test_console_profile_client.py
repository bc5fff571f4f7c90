"""The console's profile API client against an in-process fake API: every failure becomes a status, not an error."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from streams.console.profile_client import ProfileLookup, lookup_profile


def _fake_api() -> web.Application:
    async def customer(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        if customer_id == "c_known":
            return web.json_response({"customer_id": customer_id, "tier": "attention", "grade": "C"})
        if customer_id == "c_broken":
            return web.Response(status=500, text="boom")
        return web.json_response({"error": "unknown_customer", "message": "no such customer"}, status=404)

    app = web.Application()
    app.router.add_get("/customers/{customer_id}", customer)
    return app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ask(customer_ids: list[str]) -> tuple[list[ProfileLookup], ProfileLookup]:
    runner = web.AppRunner(_fake_api())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            found = [await lookup_profile(session, f"http://127.0.0.1:{port}/", c) for c in customer_ids]
            nobody = await lookup_profile(session, f"http://127.0.0.1:{_closed_port()}", "c_known")
    finally:
        await runner.cleanup()
    return found, nobody


def test_lookup_reports_view_unknown_error_and_unreachable() -> None:
    (known, unknown, broken), unreachable = asyncio.run(_ask(["c_known", "c_missing", "c_broken"]))
    assert known.status == "ok" and known.view is not None and known.view["grade"] == "C"
    assert (unknown.status, unknown.view) == ("unknown_customer", None)
    assert broken.status == "error" and "500" in broken.message
    assert unreachable.status == "unreachable" and "unreachable" in unreachable.message


def test_lookup_without_a_url_says_not_configured() -> None:
    lookup = asyncio.run(lookup_profile(None, None, "c_1"))
    assert lookup.status == "not_configured" and lookup.view is None
