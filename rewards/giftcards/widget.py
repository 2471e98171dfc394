"""The gift card balance check in the shopper's widget (`POST /v1/me/gift-card-lookup`).

The widget holds a member's token, not an API key, so its checks can't be counted per key as a
storefront's are: they share one store-wide count of their own (`WIDGET_KEY`), and each shopper
is counted by the address the request came from, under the same allowance, failure count and
lockout as `POST /v1/gift-cards/lookup` (rewards/giftcards/throttle.py).
"""

from flask import current_app
from sqlalchemy.orm import Session

from loyalty.addresses import NotAnAddress, client_key
from loyalty.types import utcnow
from rewards.giftcards import service, throttle
from rewards.giftcards.schemas import GiftCardLookupResultSchema

# The "key" every widget check is counted under: one store-wide ceiling for all shoppers.
WIDGET_KEY = "widget"


def gift_card_balance(session: Session, code: str, address: str) -> dict:
    """`GiftCardLookupResultSchema`'s dict, or the one `NotFound` for anything but a live card."""
    try:
        shopper = client_key(address)
    except NotAnAddress:
        shopper = address
    secrets = current_app.config["SECRET_KEYS"]
    guard = throttle.CodeGuard(
        current_app.config, code, secrets, shopper=shopper, api_key=WIDGET_KEY
    )
    return GiftCardLookupResultSchema().dump(
        service.lookup(session, guard, code, secrets, utcnow())
    )
