"""What the store platforms' discount APIs share: the interface (`StoreCodes`), the terms of a
code to create, the answer of a call, and one JSON-over-HTTP request.

Plain stdlib HTTP, as outbound webhooks do: the official `ShopifyAPI` package keeps its session
in process-wide class state and its GraphQL part is a thin urllib call, and the `woocommerce`
package has not been released since 2021; neither would let the tests see more than this does.
"""

import http.client
import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from connectors.intake import EXPONENTS

USER_AGENT = "loyalty-store-codes/1"


@dataclass(frozen=True)
class CodeTerms:
    """A reward code as the platform gets it: the exact text our checkout recognises."""

    code: str
    kind: str  # amount_off | percent_off | free_shipping
    amount: int | None  # minor units of `currency`
    percent: int | None
    min_order: int
    currency: str
    starts_at: datetime
    ends_at: datetime

    def money(self, minor: int) -> str:
        """Minor units as the platforms' decimal strings ("10.00")."""
        exponent = EXPONENTS.get(self.currency.upper(), 2)
        return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


@dataclass(frozen=True)
class Answer:
    """What became of one call. `platform_id` on success; otherwise `error` (the platform's
    own words), with `retry_after` when the platform asked us to slow down and `final` when
    trying again cannot help (a validation error, a refused token)."""

    ok: bool
    platform_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    final: bool = False


class StoreCodes(Protocol):
    """One platform's discount codes. Implementations never raise for what the platform or the
    network answered: every outcome is an `Answer`."""

    name: str

    def create(self, terms: CodeTerms) -> Answer: ...

    def delete(self, platform_id: str) -> Answer: ...


@dataclass
class Response:
    status: int | None  # None: no answer (timeout, refused connection)
    headers: dict
    body: object  # the decoded JSON, or None
    error: str | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        # urllib would send our Authorization / access token on to wherever a redirect points.
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def request_json(
    method: str, url: str, headers: dict, payload: dict | None, timeout: float
) -> Response:
    """One request with a JSON body; any answer (an error status too) comes back as data."""
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **headers}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s) only, checked in config
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Response(response.status, dict(response.headers), _json(response.read()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers or {}), _json(exc.read()), f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(None, {}, None, f"{type(exc).__name__}: {reason}"[:500])


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def retry_after(headers: dict) -> float | None:
    """`Retry-After` in seconds (Shopify sends seconds, possibly fractional)."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return max(seconds, 0.0) if math.isfinite(seconds) else None
    return None
