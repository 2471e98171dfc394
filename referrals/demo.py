"""The demo program's referrals: friends who converted over the past year, and a few claims
waiting for review, so the console's referral queue and conversion figures have something to
show on a fresh `make run`.

Made the way a storefront makes them: a claim (`POST /v1/referrals/claim`), then the friend's
first order through the order intake with the referral code. It runs after the demo history
(loyalty.demo_history) and is the same every time, relative to the day it runs.
"""

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty import jobs
from loyalty.hooks import hooks
from loyalty.members.models import Member
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.types import utcnow
from referrals import service

SEED = 20261207

# Friends who claimed and then ordered, and three claims the fraud rules hold for review: one
# sent without the friend's IP address (that friend has ordered since, so approving it rewards
# the referrer), one whose name looks like the referrer's spelled with other alphabets'
# letters, one whose address looks like the referrer's.
CONVERTED = 9
HELD = ("missing_ip", "confusable_name", "confusable_email")


def _look_alike(name: str) -> str:
    """The name with Latin letters swapped for Cyrillic ones that look the same."""
    return name.translate(str.maketrans("aeoAO", "аеоАО"))


def seed_demo_referrals(session: Session) -> None:
    rng = random.Random(SEED)
    now = utcnow()
    referrers = list(
        session.scalars(
            select(Member)
            .where(Member.customer_id.like("demo-c%"), Member.erased_at.is_(None))
            .order_by(Member.id)
        )
    )
    if not referrers:
        return
    registry = hooks()
    schema = EventSchema()
    for n in range(1, CONVERTED + 1):
        referrer = rng.choice(referrers)
        claimed_at = now - timedelta(days=rng.uniform(20, 330))
        friend_id = f"demo-friend{n:02d}"
        email = f"friend.{n}@example.net"
        referral = service.claim(
            session,
            {"code": service.code_for(session, referrer.id), "email": email,
             "customer_id": friend_id, "name": f"Friend {n}", "ip": f"198.51.100.{n}"},
            now=claimed_at,
        )  # fmt: skip
        code = (referral.friend_reward or {}).get("code")
        paid_at = claimed_at + timedelta(days=rng.uniform(0.2, 6))
        raw = {
            "id": f"evt-{friend_id}-o1",
            "type": "order.paid",
            "occurred_at": paid_at.isoformat(),
            "order": {
                "id": f"{friend_id}-o1",
                "customer_id": friend_id,
                "email": email,
                "name": f"Friend {n}",
                "currency": "USD",
                "lines": [{"sku": "NIGHT-CREAM", "quantity": 1, "unit_price": 6200, "discount": 0}],
                "shipping": 500,
                "tax": 0,
                "referral_code": referral.code,
                "reward_codes": [code] if code else [],
                "ip": f"198.51.100.{n}",
            },
        }
        orders.process_event(session, registry, schema.load(raw), orders.body_hash(raw))
    jobs.mature_points(session, now, 1000)  # rewards whose return window has passed
    for n, how in enumerate(HELD, start=1):
        referrer = referrers[-n]
        claim = {
            "code": service.code_for(session, referrer.id),
            "email": f"new.friend.{n}@example.net",
            "customer_id": f"demo-held{n}",
            "name": f"New Friend {n}",
            "ip": f"203.0.113.{n}",
        }
        if how == "missing_ip":
            del claim["ip"]
        elif how == "confusable_name":
            claim["name"] = _look_alike(referrer.name or "")
        else:
            local, _, domain = (referrer.email_normalized or "").partition("@")
            claim["email"] = f"{_look_alike(local)}@{domain}"
        claimed_at = now - timedelta(hours=3 * n)
        service.claim(session, claim, now=claimed_at)
        if how == "missing_ip":  # the friend's first order waits in review with the claim
            friend_order = {
                "id": f"evt-demo-held{n}-o1",
                "type": "order.paid",
                "occurred_at": (claimed_at + timedelta(hours=1)).isoformat(),
                "order": {
                    "id": f"demo-held{n}-o1",
                    "customer_id": claim["customer_id"],
                    "email": claim["email"],
                    "name": claim["name"],
                    "currency": "USD",
                    "lines": [
                        {"sku": "ROSE-SERUM", "quantity": 2, "unit_price": 4800, "discount": 0}
                    ],
                    "shipping": 500,
                    "tax": 0,
                },
            }
            raw_event = schema.load(friend_order)
            orders.process_event(session, registry, raw_event, orders.body_hash(friend_order))
    session.flush()
