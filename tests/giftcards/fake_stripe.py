"""A small local fake of Stripe's HTTP API, and webhook payloads signed as Stripe signs them.

Only what the gift card purchase uses: `POST /v1/checkout/sessions`. It is a real HTTP server
on 127.0.0.1 in a thread, so the real `stripe` library talks to it over the network.
"""

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

API_KEY = "sk_test_fake"


def _unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`line_items[0][price_data][currency]=usd`) back to a dict."""
    root: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class FakeStripe:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_fake")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = _unflatten(parse_qsl(self.rfile.read(length).decode()))
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "form": form}
                )
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    error = {"type": "invalid_request_error", "message": "Invalid API Key"}
                    return self._reply(401, {"error": error})
                if self.path != "/v1/checkout/sessions":
                    return self._reply(404, {"error": {"type": "invalid_request_error"}})
                item = form["line_items"]["0"]
                session_id = "cs_test_" + secrets.token_hex(12)
                session = {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": form["mode"],
                    "status": "open",
                    "payment_status": "unpaid",
                    "amount_total": int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
                    "currency": item["price_data"]["currency"],
                    "customer_email": form.get("customer_email"),
                    "metadata": form.get("metadata", {}),
                    "success_url": form["success_url"],
                    "cancel_url": form["cancel_url"],
                    "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                }
                fake.sessions[session_id] = session
                return self._reply(200, session)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def pay(self, session_id: str, payment_status: str = "paid") -> dict:
        """The session as Stripe sends it in the event once the shopper has paid."""
        return {**self.sessions[session_id], "status": "complete", "payment_status": payment_status}


def event(session: dict, kind: str = "checkout.session.completed", event_id=None) -> bytes:
    body = {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "type": kind,
        "livemode": False,
        "data": {"object": session},
    }
    return json.dumps(body).encode()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`Stripe-Signature` exactly as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    return f"t={t},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"
