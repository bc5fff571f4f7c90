"""The profile lookup API on the worker's web server: ``GET /customers/{customer_id}``.

Any worker answers: Faust's table routing forwards the request to the worker that owns the customer's
partition of the customer-state table (at that worker's ``web_host:web_port``), which builds the answer from its
own copy of the state. Bodies are :class:`schemas.profile_api.CustomerView` (200) or
:class:`schemas.profile_api.ApiError` (400 invalid id, 404 unknown customer, 503 while partitions move).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import faust
from faust.web import Request, Response, View
from pydantic import TypeAdapter, ValidationError

from detectors.engine_state import CustomerState
from detectors.profile_view import customer_view
from schemas import serde
from schemas.ids import PseudoId
from schemas.profile_api import ApiError

__all__ = ["CUSTOMER_PATH", "install_profile_api"]

log = logging.getLogger(__name__)

CUSTOMER_PATH: Final = "/customers/{customer_id}"
_CUSTOMER_ID: Final = TypeAdapter(PseudoId)
_JSON: Final = "application/json"


def _error(view: View, status: int, error: ApiError) -> Response:
    return view.bytes(serde.dumps(error), content_type=_JSON, status=status)


def install_profile_api(app: faust.App, states: Any) -> None:
    """Register ``GET /customers/{customer_id}`` on ``app``, answered from ``states`` (the customer-state table)."""

    @app.page(CUSTOMER_PATH)
    class CustomerPage(View):
        """One customer's current profile, score, tier and grade."""

        @app.table_route(table=states, match_info="customer_id")
        async def get(self: View, request: Request, **match_info: Any) -> Response:
            """Answer from this worker's copy of the customer's state (routing made sure it owns it)."""
            customer_id = str(match_info["customer_id"])
            try:
                _CUSTOMER_ID.validate_python(customer_id)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"]
                return _error(self, 400, ApiError(error="invalid_customer_id", message=message, customer_id=None))
            stored: bytes | None = states.get(customer_id.encode())
            state = CustomerState.from_bytes(stored) if stored else None
            # A state can exist before any behaviour of its own (a ring membership arrived first): still unknown.
            if state is None or state.profile.watermark_ms < 0:
                unknown = ApiError(error="unknown_customer", message="no events seen yet", customer_id=customer_id)
                return _error(self, 404, unknown)
            view = customer_view(state)
            view = view.model_copy(update={"served_by": str(app.conf.canonical_url)})
            return self.bytes(serde.dumps(view), content_type=_JSON)

        async def on_request_error(self, request: Request, exc: Any) -> Response:
            """Routing failures (no owner known while partitions are being assigned) as a JSON 503."""
            log.warning("profile lookup failed: %s", exc)
            error = ApiError(error="unavailable", message="partition owner unknown; retry shortly")
            return _error(self, 503, error)
