"""The demo program's history: two years of orders, so the console has something to show.

On a fresh `make run` the dashboard, the retention and cohort reports and the RFM segments
need customers who bought, came back or drifted away. This makes them the way a store's
history would arrive: members enrolled, then order events (paid, a few refunded) sent
through the same intake as `POST /v1/events`, dated in the past, oldest first; then the
jobs that run on such a history (maturing and expiring points). Customers who never joined
the program place orders too (the program's auto-enrolment is off while they do), so members
can be compared with non-members.

It is the same every time (a fixed random seed), relative to the day it runs. `DEMO_HISTORY=0`
leaves it out (the tests do: they make their own data).
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.orm import Session

from loyalty import jobs
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.program.service import get_program
from loyalty.types import utcnow

CUSTOMERS = 240
MEMBER_SHARE = 0.6
DAYS = 730
SEED = 20261206

# (sku, unit price in cents, category)
PRODUCTS = [
    ("ROSE-SERUM", 4800, "skincare"),
    ("SILK-LIPSTICK", 2600, "makeup"),
    ("NIGHT-CREAM", 6200, "skincare"),
    ("MINERAL-SPF", 3400, "skincare"),
    ("VELVET-MASCARA", 2400, "makeup"),
    ("CEDAR-EDP", 9800, "fragrance"),
    ("TRAVEL-KIT", 1800, "accessories"),
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Ema", "Femi", "Gus", "Hana", "Ivo", "Jun",
               "Kai", "Lea", "Mo", "Nia", "Oli", "Pia", "Raf", "Sol", "Tao", "Uma"]  # fmt: skip
LAST_NAMES = ["Alves", "Brandt", "Costa", "Dubois", "Eto", "Fischer", "García", "Hale",
              "Ito", "Jensen", "Kowalski", "Lund", "Moreau", "Novak", "Okafor", "Park"]  # fmt: skip


@dataclass(frozen=True)
class Customer:
    customer_id: str
    email: str
    name: str
    member: bool


def demo_customers(rng: random.Random) -> list[Customer]:
    people = []
    for n in range(1, CUSTOMERS + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}.{n}@example.com".replace("é", "e").replace(
            "í", "i"
        )
        member = rng.random() < MEMBER_SHARE
        people.append(Customer(f"demo-c{n:03d}", email, f"{first} {last}", member))
    return people


def _order(rng: random.Random, customer: Customer, number: int) -> dict:
    lines = []
    for sku, price, category in rng.sample(PRODUCTS, rng.choice([1, 1, 2, 2, 3])):
        quantity = rng.choice([1, 1, 1, 2])
        discount = rng.choice([0, 0, 0, price * quantity // 10])
        lines.append(
            {
                "sku": sku,
                "quantity": quantity,
                "unit_price": price,
                "discount": discount,
                "category": category,
            }  # fmt: skip
        )
    return {
        "id": f"{customer.customer_id}-o{number}",
        "customer_id": customer.customer_id,
        "email": customer.email,
        "name": customer.name,
        "currency": "USD",
        "lines": lines,
        "shipping": rng.choice([0, 500]),
        "tax": 0,
    }


def _refund(order: dict, at: datetime) -> dict:
    """Half of the order's eligible amount back."""
    amount = sum(
        line["quantity"] * line["unit_price"] - line["discount"] for line in order["lines"]
    )
    return {
        "id": f"evt-{order['id']}-refund",
        "type": "order.refunded",
        "occurred_at": at.isoformat(),
        "order": {"id": order["id"], "customer_id": order["customer_id"], "currency": "USD"},
        "refund": {"id": f"{order['id']}-r1", "amount": amount // 2},
    }


def demo_events(rng: random.Random, people: list[Customer], now: datetime) -> list[dict]:
    """Each customer's orders: a first one somewhere in the two years, then, while they keep
    coming back (members more often than others), one every few weeks to months."""
    start = now - timedelta(days=DAYS)
    events: list[dict] = []
    for person in people:
        comes_back = 0.68 if person.member else 0.42
        at = start + timedelta(days=rng.uniform(0, DAYS - 3), minutes=rng.randrange(1440))
        number = 1
        while at < now - timedelta(hours=1) and number <= 12:
            order = _order(rng, person, number)
            events.append({"id": f"evt-{order['id']}", "type": "order.paid",
                           "occurred_at": at.isoformat(), "order": order})  # fmt: skip
            refund_at = at + timedelta(days=rng.uniform(3, 20))
            if rng.random() < 0.05 and refund_at < now:
                events.append(_refund(order, refund_at))
            if rng.random() > comes_back:
                break
            at += timedelta(days=rng.uniform(18, 110), minutes=rng.randrange(1440))
            number += 1
    events.sort(key=lambda event: str(event["occurred_at"]))
    return events


def seed_demo_history(session: Session) -> None:
    """Members, non-members and their orders over two years; then mature and expire points."""
    if not current_app.config["DEMO_HISTORY"]:
        return
    rng = random.Random(SEED)
    now = utcnow()
    people = demo_customers(rng)
    events = demo_events(rng, people, now)
    first_order: dict[str, str] = {}
    for event in events:
        first_order.setdefault(event["order"]["customer_id"], event["occurred_at"])
    program = get_program(session, for_update=True)
    auto_enroll = program.auto_enroll
    program.auto_enroll = False  # customers who never joined stay customers
    session.flush()
    registry = hooks()
    for person in people:
        if person.member and person.customer_id in first_order:
            joined = datetime.fromisoformat(first_order[person.customer_id])
            members.enroll(
                session, registry, person.customer_id, person.email, name=person.name,
                enrolled_at=joined - timedelta(minutes=rng.randrange(5, 600)),
            )  # fmt: skip
    schema = EventSchema()
    for raw in events:
        orders.process_event(session, registry, schema.load(raw), orders.body_hash(raw))
    program = get_program(session, for_update=True)
    program.auto_enroll = auto_enroll
    session.flush()
    jobs.mature_points(session, now, 1000)
    jobs.expire_points(session, now, 1000)
    session.flush()
