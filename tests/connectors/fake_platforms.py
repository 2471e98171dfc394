"""Local fakes of Shopify's Admin GraphQL API and WooCommerce's REST coupons, answering as the
platforms document: real HTTP servers on 127.0.0.1 in a thread, so our clients talk to them over
the network. Only the discount calls are there. `fake.answers` queues canned answers (a 429 with
Retry-After, a GraphQL THROTTLED, a 503) that take the place of the next requests.
"""

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SHOPIFY_TOKEN = "shpat_fake_token"  # noqa: S105 - a test value
WOO_KEY, WOO_SECRET = "ck_fake", "cs_fake"

THROTTLED = {
    "errors": [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ],
    "extensions": {
        "cost": {
            "requestedQueryCost": 10,
            "actualQueryCost": None,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": 0,
                "restoreRate": 2.0,
            },
        }
    },
}


class _Fake:
    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict, dict]] = []  # (status, headers, body), in order
        self.delay = 0.0  # seconds each answer takes: lets concurrent workers overlap
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                sent = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(raw) if raw else None,
                }
                with fake.lock:
                    fake.requests.append(sent)
                    canned = fake.answers.pop(0) if fake.answers else None
                time.sleep(fake.delay)
                if canned is not None:
                    status, headers, body = canned
                    return self._reply(status, body, headers)
                with fake.lock:
                    status, body = fake.answer(sent)
                return self._reply(status, body)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FakeShopify(_Fake):
    """`POST /admin/api/{version}/graphql.json` with discountCodeBasicCreate,
    discountCodeFreeShippingCreate and discountCodeDelete."""

    def __init__(self):
        super().__init__()
        self.discounts: dict[str, dict] = {}  # node id -> {"mutation", "input"}
        self._next = 1

    def mutations(self, name: str) -> list[dict]:
        return [r for r in self.requests if r["json"] and name in r["json"]["query"]]

    def by_code(self, code: str) -> dict | None:
        for discount in self.discounts.values():
            if discount["input"]["code"].upper() == code.upper():
                return discount
        return None

    def answer(self, sent):
        if not re.fullmatch(r"/admin/api/\d{4}-\d{2}/graphql\.json", urlsplit(sent["path"]).path):
            return 404, {"errors": "Not Found"}
        if sent["headers"].get("X-Shopify-Access-Token") != SHOPIFY_TOKEN:
            return 401, {
                "errors": "[API] Invalid API key or access token (unrecognized login or wrong"
                " password)"
            }
        query, variables = sent["json"]["query"], sent["json"].get("variables") or {}
        for name, arg in (
            ("discountCodeBasicCreate", "basicCodeDiscount"),
            ("discountCodeFreeShippingCreate", "freeShippingCodeDiscount"),
        ):
            if re.search(rf"\b{name}\(", query):
                return 200, {"data": {name: self._create(name, arg, variables[arg])}}
        if re.search(r"\bcodeDiscountNodeByCode\(", query):
            found = self.by_code(variables["code"])
            node = {"id": found["id"]} if found is not None else None
            return 200, {"data": {"codeDiscountNodeByCode": node}}
        if re.search(r"\bdiscountCodeDelete\(", query):
            node_id = variables["id"]
            if self.discounts.pop(node_id, None) is None:
                errors = [
                    {"field": ["id"], "code": "INVALID", "message": "Discount does not exist"}
                ]
                return 200, {"data": {"discountCodeDelete": {"deletedCodeDiscountId": None,
                                                             "userErrors": errors}}}  # fmt: skip
            return 200, {"data": {"discountCodeDelete": {"deletedCodeDiscountId": node_id,
                                                         "userErrors": []}}}  # fmt: skip
        return 200, {"errors": [{"message": "Field doesn't exist on type 'Mutation'",
                                 "extensions": {"code": "undefinedField"}}]}  # fmt: skip

    def _create(self, name: str, arg: str, values: dict) -> dict:
        errors = []
        needed = ["code", "title", "startsAt"] + (["customerGets"] if arg == "basicCodeDiscount"
                                                  else [])  # fmt: skip
        for field in needed:
            if not values.get(field):
                errors.append({"field": [arg, field], "code": "BLANK", "message": "can't be blank"})
        if not values.get("context") and not values.get("customerSelection"):
            errors.append({"field": [arg, "context"], "code": "BLANK",
                           "message": "Context can't be blank"})  # fmt: skip
        if values.get("code") and self.by_code(values["code"]) is not None:
            errors.append(
                {
                    "field": [arg, "code"],
                    "code": "TAKEN",
                    "message": "Code must be unique. Please try a different code.",
                }
            )
        if errors:
            return {"codeDiscountNode": None, "userErrors": errors}
        node_id = f"gid://shopify/DiscountCodeNode/{self._next}"
        self._next += 1
        self.discounts[node_id] = {"id": node_id, "mutation": name, "input": values}
        return {"codeDiscountNode": {"id": node_id}, "userErrors": []}


class FakeWooCommerce(_Fake):
    """`/wp-json/wc/v3/coupons`: create, look up by code, delete (force)."""

    def __init__(self):
        super().__init__()
        self.coupons: dict[int, dict] = {}
        self._next = 100

    def answer(self, sent):
        parts = urlsplit(sent["path"])
        expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if sent["headers"].get("Authorization") != expected:
            return 401, {"code": "woocommerce_rest_cannot_create",
                         "message": "Sorry, you are not allowed to create resources.",
                         "data": {"status": 401}}  # fmt: skip
        match = re.fullmatch(r"/wp-json/wc/v3/coupons(?:/(\d+))?", parts.path)
        if match is None:
            return 404, {"code": "rest_no_route", "message": "No route was found.",
                         "data": {"status": 404}}  # fmt: skip
        coupon_id = match.group(1)
        if sent["method"] == "POST" and coupon_id is None:
            return self._create(sent["json"])
        if sent["method"] == "GET" and coupon_id is None:
            code = (parse_qs(parts.query).get("code") or [""])[0].lower()
            return 200, [c for c in self.coupons.values() if not code or c["code"] == code]
        if sent["method"] == "DELETE" and coupon_id is not None:
            if parse_qs(parts.query).get("force") != ["true"]:
                return 501, {"code": "woocommerce_rest_trash_not_supported",
                             "message": "Coupons do not support trashing.",
                             "data": {"status": 501}}  # fmt: skip
            coupon = self.coupons.pop(int(coupon_id), None)
            if coupon is None:
                return 404, {"code": "woocommerce_rest_shop_coupon_invalid_id",
                             "message": "Invalid ID.", "data": {"status": 404}}  # fmt: skip
            return 200, coupon
        return 404, {"code": "rest_no_route", "message": "No route was found.",
                     "data": {"status": 404}}  # fmt: skip

    def _create(self, values: dict):
        code = str(values.get("code") or "").lower()  # WooCommerce keeps codes in lower case
        if not code:
            return 400, {
                "code": "woocommerce_rest_empty_coupon_code",
                "message": "The coupon code cannot be empty.",
                "data": {"status": 400},
            }
        if any(c["code"] == code for c in self.coupons.values()):
            return 400, {
                "code": "woocommerce_rest_coupon_code_already_exists",
                "message": "The coupon code already exists",
                "data": {"status": 400},
            }
        if values.get("discount_type") not in ("percent", "fixed_cart", "fixed_product"):
            return 400, {
                "code": "rest_invalid_param",
                "message": "Invalid parameter(s): discount_type",
                "data": {"status": 400, "params": {"discount_type": "not one of"}},
            }
        coupon = {**values, "id": self._next, "code": code, "usage_count": 0}
        self._next += 1
        self.coupons[coupon["id"]] = coupon
        return 201, coupon

    def by_code(self, code: str) -> dict | None:
        return next((c for c in self.coupons.values() if c["code"] == code.lower()), None)
