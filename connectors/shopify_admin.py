"""Shopify's Admin GraphQL API: a reward code becomes a one-time discount code of the shop.

An amount or percentage off is `discountCodeBasicCreate`, free shipping is
`discountCodeFreeShippingCreate`; both for every buyer, usable once (`usageLimit: 1`, once per
customer), from the code's issue to its expiry, with the code's minimum subtotal. Ending a code
is `discountCodeDelete`. Rate limits come two ways: HTTP 429 with `Retry-After`, and a GraphQL
error `THROTTLED` whose cost extension says when enough points are back.
"""

import math

from connectors.platform_api import Answer, CodeTerms, Response, request_json, retry_after

_FIELDS = "codeDiscountNode { id } userErrors { field code message }"
BASIC_CREATE = (
    "mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {"
    f" discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {{ {_FIELDS} }} }}"
)
FREE_SHIPPING_CREATE = (
    "mutation discountCodeFreeShippingCreate("
    "$freeShippingCodeDiscount: DiscountCodeFreeShippingInput!) {"
    " discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount)"
    f" {{ {_FIELDS} }} }}"
)
BY_CODE = (
    "query codeDiscountNodeByCode($code: String!) { codeDiscountNodeByCode(code: $code) { id } }"
)
DELETE = (
    "mutation discountCodeDelete($id: ID!) {"
    " discountCodeDelete(id: $id) { deletedCodeDiscountId userErrors { field code message } } }"
)


def discount_input(terms: CodeTerms) -> dict:
    """The mutation's input: what the shop's checkout grants for this code."""
    values = {
        "title": f"Reward {terms.code}",
        "code": terms.code,
        "startsAt": terms.starts_at.isoformat(),
        "endsAt": terms.ends_at.isoformat(),
        "context": {"all": "ALL"},
        "appliesOncePerCustomer": True,
        "usageLimit": 1,
    }
    if terms.min_order > 0:
        values["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": terms.money(terms.min_order)}
        }
    if terms.kind == "free_shipping":
        values["destination"] = {"all": True}
        return values
    if terms.kind == "amount_off":
        value: dict[str, object] = {
            "discountAmount": {"amount": terms.money(terms.amount or 0), "appliesOnEachItem": False}
        }
    else:
        value = {"percentage": (terms.percent or 0) / 100}
    values["customerGets"] = {"value": value, "items": {"all": True}}
    return values


class ShopifyAdmin:
    name = "shopify"

    def __init__(self, shop: str, token: str, *, api_base: str = "", version: str, timeout: float):
        if "." not in shop:
            shop = f"{shop}.myshopify.com"
        base = api_base or f"https://{shop}"
        self.url = f"{base}/admin/api/{version}/graphql.json"
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"ShopifyAdmin({self.url!r})"

    def _call(self, query: str, variables: dict) -> Response:
        return request_json(
            "POST",
            self.url,
            {"X-Shopify-Access-Token": self._token},
            {"query": query, "variables": variables},
            self.timeout,
        )

    def create(self, terms: CodeTerms) -> Answer:
        if terms.kind == "free_shipping":
            query, name, arg = (
                FREE_SHIPPING_CREATE,
                "discountCodeFreeShippingCreate",
                ("freeShippingCodeDiscount"),
            )
        else:
            query, name, arg = BASIC_CREATE, "discountCodeBasicCreate", "basicCodeDiscount"
        response = self._call(query, {arg: discount_input(terms)})
        payload, problem = _payload(response, name)
        if problem is not None and _code_taken(response):
            # Ours, created by an earlier attempt whose answer was lost (80 random bits: nobody
            # else has this code): take it over.
            found = self._call(BY_CODE, {"code": terms.code})
            body = found.body if isinstance(found.body, dict) else {}
            node = (body.get("data") or {}).get("codeDiscountNodeByCode") or {}
            if found.status == 200 and node.get("id"):
                return Answer(True, platform_id=node["id"])
        if problem is not None:
            return problem
        node = payload.get("codeDiscountNode") or {}
        if not node.get("id"):
            return Answer(False, error="Shopify answered without a discount id.")
        return Answer(True, platform_id=node["id"])

    def delete(self, platform_id: str) -> Answer:
        response = self._call(DELETE, {"id": platform_id})
        _payload_, problem = _payload(response, "discountCodeDelete")
        return problem or Answer(True, platform_id=platform_id)


def _code_taken(response: Response) -> bool:
    data = (response.body or {}).get("data") if isinstance(response.body, dict) else None
    payloads = (data or {}).values()
    return any(
        e.get("code") == "TAKEN" and (e.get("field") or [])[-1:] == ["code"]
        for payload in payloads
        for e in ((payload or {}).get("userErrors") or [])
    )


def _payload(response: Response, name: str) -> tuple[dict, Answer | None]:
    """The mutation's payload, or the Answer that says why there is none."""
    if response.status == 429:
        wait = retry_after(response.headers)
        return {}, Answer(False, error="Shopify: 429 Too Many Requests", retry_after=wait or 1.0)
    if response.status is None or response.status >= 500:
        return {}, Answer(False, error=f"Shopify: {response.error}")
    body = response.body if isinstance(response.body, dict) else {}
    if response.status != 200:
        # 401/403 (token, scope), 404 (shop), 400: the same call would fail the same way.
        detail = body.get("errors") if body else None
        return {}, Answer(False, error=f"Shopify: HTTP {response.status} {detail or ''}"[:500],
                          final=True)  # fmt: skip
    errors = body.get("errors") or []
    if errors:
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            return {}, Answer(False, error="Shopify: THROTTLED", retry_after=_restored_in(body))
        text = "; ".join(str(e.get("message")) for e in errors)
        return {}, Answer(False, error=f"Shopify: {text}"[:500], final=True)
    payload = (body.get("data") or {}).get(name) or {}
    user_errors = payload.get("userErrors") or []
    if user_errors:
        text = "; ".join(
            f"{'.'.join(map(str, e.get('field') or []))}: {e.get('message')}"
            + (f" ({e['code']})" if e.get("code") else "")
            for e in user_errors
        )
        return {}, Answer(False, error=f"Shopify: {text}"[:500], final=True)
    return payload, None


def _restored_in(body: dict) -> float:
    """Seconds until the bucket holds the query's cost again, from the cost extension."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(1.0, math.ceil(missing / float(status["restoreRate"])))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0
