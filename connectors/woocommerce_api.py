"""WooCommerce's REST API (wc/v3): a reward code becomes a coupon of the store.

`POST /wp-json/wc/v3/coupons` with `usage_limit: 1`, `fixed_cart` or `percent`, free shipping
for that kind, the code's minimum and its expiry; ending a code deletes the coupon for good
(`DELETE .../coupons/{id}?force=true`). Authentication is HTTP Basic with the REST key pair, so
the site must be HTTPS (the config refuses plain HTTP but to a loopback address).
"""

import base64
from urllib.parse import quote

from connectors.platform_api import Answer, CodeTerms, Response, request_json, retry_after

ALREADY_EXISTS = "woocommerce_rest_coupon_code_already_exists"


def coupon_input(terms: CodeTerms) -> dict:
    kind = terms.kind
    return {
        # WooCommerce keeps coupon codes in lower case; a shopper's order reports it so, and
        # our checkout reads codes case-blind (loyalty.codes.normalize_code).
        "code": terms.code,
        "discount_type": "percent" if kind == "percent_off" else "fixed_cart",
        "amount": (
            str(terms.percent) if kind == "percent_off"
            else terms.money(terms.amount or 0) if kind == "amount_off" else "0"
        ),
        "free_shipping": kind == "free_shipping",
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "minimum_amount": terms.money(terms.min_order) if terms.min_order else "",
        "date_expires_gmt": terms.ends_at.strftime("%Y-%m-%dT%H:%M:%S"),
        "description": "Loyalty reward code",
    }  # fmt: skip


class WooCommerceCoupons:
    name = "woocommerce"

    def __init__(self, url: str, key: str, secret: str, *, timeout: float):
        self.base = f"{url.rstrip('/')}/wp-json/wc/v3/coupons"
        basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}"}
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the key pair
        return f"WooCommerceCoupons({self.base!r})"

    def _call(self, method: str, url: str, payload: dict | None = None) -> Response:
        return request_json(method, url, self._headers, payload, self.timeout)

    def create(self, terms: CodeTerms) -> Answer:
        response = self._call("POST", self.base, coupon_input(terms))
        if response.status in (200, 201) and isinstance(response.body, dict):
            return Answer(True, platform_id=str(response.body["id"]))
        if _code(response) == ALREADY_EXISTS:
            # Ours, created by an earlier attempt whose answer was lost: take it over.
            found = self._call("GET", f"{self.base}?code={quote(terms.code)}")
            listed = found.body if found.status == 200 and isinstance(found.body, list) else []
            mine = [c for c in listed if isinstance(c, dict)]
            if mine and str(mine[0].get("code", "")).upper() == terms.code:
                return Answer(True, platform_id=str(mine[0]["id"]))
        return _failure(response)

    def delete(self, platform_id: str) -> Answer:
        response = self._call("DELETE", f"{self.base}/{quote(platform_id)}?force=true")
        if response.status == 200 or response.status == 404:  # 404: already gone
            return Answer(True, platform_id=platform_id)
        return _failure(response)


def _code(response: Response) -> str | None:
    return response.body.get("code") if isinstance(response.body, dict) else None


def _failure(response: Response) -> Answer:
    if response.status == 429:
        wait = retry_after(response.headers)
        return Answer(False, error="WooCommerce: 429 Too Many Requests", retry_after=wait or 1.0)
    if response.status is None or response.status >= 500:
        return Answer(False, error=f"WooCommerce: {response.error}")
    body = response.body if isinstance(response.body, dict) else {}
    text = f"{body.get('message') or response.error} ({body.get('code') or response.status})"
    return Answer(False, error=f"WooCommerce: {text}"[:500], final=True)
