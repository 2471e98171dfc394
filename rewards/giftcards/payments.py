"""Stripe behind a small interface: create a Checkout session, verify a webhook.

`StripeGateway` uses the real `stripe` library; `STRIPE_API_BASE` points it at another address
(the tests run it against a local fake of Stripe's HTTP API).
"""

import json
import time
from dataclasses import dataclass
from typing import Protocol

import stripe
from stripe.params.checkout import SessionCreateParams

from loyalty.errors import DomainError

WEBHOOK_TOLERANCE_SECONDS = 300


class PaymentProviderError(DomainError):
    status, type, title = 502, "payment-provider-error", "The payment provider failed"


class InvalidWebhook(DomainError):
    """Bad signature, stale timestamp, or not JSON: answer 400 and change nothing."""

    status, type, title = 400, "invalid-signature", "Webhook signature not valid"


@dataclass
class CheckoutSession:
    id: str
    url: str


class PaymentGateway(Protocol):
    def create_checkout_session(
        self, *, amount: int, currency: str, purchaser_email: str, success_url: str,
        cancel_url: str, metadata: dict[str, str],
    ) -> CheckoutSession: ...  # fmt: skip

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict: ...


class StripeGateway:
    def __init__(self, api_key: str, webhook_secrets: list[str], api_base: str = "",
                 tolerance: int = WEBHOOK_TOLERANCE_SECONDS):  # fmt: skip
        self.client = stripe.StripeClient(
            api_key or "sk_unset",
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        )
        self.webhook_secrets = webhook_secrets
        self.tolerance = tolerance
        self.configured = bool(api_key)

    def create_checkout_session(self, *, amount, currency, purchaser_email, success_url,
                                cancel_url, metadata) -> CheckoutSession:  # fmt: skip
        if not self.configured:
            raise PaymentProviderError("Gift card checkout needs STRIPE_API_KEY.")
        params: SessionCreateParams = {
            "mode": "payment",
            "customer_email": purchaser_email,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": "Gift card"},
                    },
                }
            ],
            "metadata": metadata,
        }
        try:
            session = self.client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise PaymentProviderError("Stripe refused or could not be reached.") from exc
        if session.url is None:  # a payment-mode session always has its page
            raise PaymentProviderError("Stripe gave no checkout page for this session.")
        return CheckoutSession(id=session.id, url=session.url)

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict:
        if not signature:
            raise InvalidWebhook("missing Stripe-Signature")
        for secret in self.webhook_secrets:  # rotation: any configured secret may match
            try:
                stripe.Webhook.construct_event(payload, signature, secret, self.tolerance)
            except stripe.SignatureVerificationError:
                continue
            except ValueError as exc:
                raise InvalidWebhook("payload is not JSON") from exc
            if _signed_at(signature) > time.time() + self.tolerance:
                # stripe-python only refuses old timestamps; one from the future is as suspect.
                raise InvalidWebhook("timestamp is in the future")
            return json.loads(payload)
        raise InvalidWebhook("no webhook secret matches the signature (or it is too old)")


def _signed_at(signature: str) -> int:
    for item in signature.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise InvalidWebhook("no timestamp in Stripe-Signature")
