"""The console's one call to the profile API: ``GET {base}/customers/{id}``, answered by a worker.

The console must show what ClickHouse knows even when no worker answers, so every failure becomes a
:class:`ProfileLookup` that says why (not configured, unreachable, unknown customer), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp

from schemas import serde

__all__ = ["LOOKUP_TIMEOUT_S", "ProfileLookup", "lookup_profile"]

LOOKUP_TIMEOUT_S: Final = 3.0
LookupStatus = Literal["ok", "not_configured", "unreachable", "unknown_customer", "error"]


@dataclass(frozen=True)
class ProfileLookup:
    """What the profile API said about a customer: ``view`` (its JSON) when ``status`` is ``ok``."""

    status: LookupStatus
    message: str
    view: dict[str, Any] | None = None


async def lookup_profile(
    session: aiohttp.ClientSession | None, base_url: str | None, customer_id: str
) -> ProfileLookup:
    """Ask the profile API at ``base_url`` about ``customer_id`` (an id already checked against its pattern)."""
    if session is None or base_url is None:
        return ProfileLookup("not_configured", "profile API not configured (LOANWATCH_PROFILE_API_URL)")
    url = f"{base_url.rstrip('/')}/customers/{quote(customer_id, safe='')}"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=LOOKUP_TIMEOUT_S)) as response:
            body = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        return ProfileLookup("unreachable", f"profile API unreachable: {type(exc).__name__}")
    try:
        parsed = serde.loads(body)
    except serde.JSONDecodeError:
        parsed = None
    if status == 404:
        return ProfileLookup("unknown_customer", "the profile API does not know this customer")
    if status != 200 or not isinstance(parsed, dict):
        return ProfileLookup("error", f"profile API answered HTTP {status}")
    return ProfileLookup("ok", "from the worker that owns the customer", parsed)
