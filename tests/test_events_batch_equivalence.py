"""The batch endpoint leaves exactly what the single endpoint leaves: the same random events
sent one at a time into one database and in batches into another, then every table that an
event changes compared (ids and creation times aside), each event's answer compared with its
result in the batch, and `verify-ledger` clean on both."""

import itertools
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.ledger import find_drift
from tests.conftest import bearer, clone_pg, make_app, migrate

START = datetime.now(UTC) - timedelta(days=60)
CUSTOMERS = ["c_0", "c_1", "c_2", "c_3", "c_4", "c_5"]
_examples = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_apps(request, tmp_path_factory):
    """Two migrated databases of one backend, with the same program: (app, admin, storefront)
    each; real commits."""
    made = []
    for name in ("one", "many"):
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("eq") / f"{name}.sqlite3"
            if not made:
                migrate(make_app(f"sqlite:///{path}"))
                first = path
            else:
                shutil.copy(first, path)
            url = f"sqlite:///{path}"
        else:
            url = clone_pg(request.getfixturevalue("pg_template"), f"eq_{name}")
        app = make_app(url)
        with app.app_context():
            keys = {s: bearer(create_api_key(db.session, f"k-{s}", [s])[1])
                    for s in ("admin", "storefront")}  # fmt: skip
            db.session.commit()
        client = app.test_client()
        # A second tier (its multiplier from the next event on) and two bonus rules.
        tier = {"name": "Gold", "threshold": 20000, "multiplier": "1.5"}
        assert client.post("/v1/tiers", json=tier, headers=keys["admin"]).status_code == 201
        for rule in (
            {"name": "2× shoes", "trigger": "order", "multiplier": "2",
             "conditions": {"categories": ["shoes"]}},
            {"name": "welcome", "trigger": "first_order", "points": 25},
        ):  # fmt: skip
            made_rule = client.post("/v1/earning-rules", json=rule, headers=keys["admin"])
            assert made_rule.status_code == 201, made_rule.get_json()
        made.append((app, keys))
    yield made
    for app, _keys in made:
        with app.app_context():
            db.engine.dispose()


def _line(sku: int, quantity: int, price: int, shoes: bool) -> dict:
    line = {"sku": f"S{sku}", "quantity": quantity, "unit_price": price, "discount": 0}
    if shoes:
        line["category"] = "shoes"
    return line


lines = st.lists(
    st.builds(_line, st.integers(0, 3), st.integers(1, 3), st.integers(100, 9000), st.booleans()),
    min_size=1,
    max_size=3,
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["paid", "paid", "paid", "refund", "cancel", "again", "changed",
                         "invalid", "euro"]),
        st.sampled_from(CUSTOMERS),
        lines,
        st.integers(0, 40),  # which earlier order, for refunds and repeats
        st.integers(1, 6000),  # a refund's amount
    ),
    min_size=1,
    max_size=30,
)  # fmt: skip


def events_of(plan: list, prefix: str) -> list:
    """Events in time order from the plan: paid orders, refunds and cancellations of earlier
    ones, repeats of earlier events (same body, or changed), invalid ones."""
    events: list = []
    orders: list[tuple[str, str]] = []
    for n, (kind, customer, order_lines, pick, amount) in enumerate(plan):
        at = (START + timedelta(hours=n)).isoformat().replace("+00:00", "Z")
        customer = f"{prefix}{customer}"
        base = {"id": f"{prefix}e{n}", "occurred_at": at}
        if kind in ("paid", "euro", "invalid"):
            order_id = f"{prefix}o{n}"
            order = {"id": order_id, "customer_id": customer, "currency": "USD",
                     "email": f"{customer}@example.com", "lines": order_lines}  # fmt: skip
            if kind == "euro":
                order["currency"] = "EUR"
            event = {**base, "type": "order.paid" if kind != "invalid" else "order.lost",
                     "order": order}  # fmt: skip
            if kind == "paid":
                orders.append((order_id, customer))
            events.append(event)
        elif kind in ("refund", "cancel") and orders:
            order_id, owner = orders[pick % len(orders)]
            order = {"id": order_id, "customer_id": owner, "currency": "USD"}
            if kind == "refund":
                events.append({**base, "type": "order.refunded", "order": order,
                               "refund": {"id": f"{prefix}r{n}", "amount": amount}})  # fmt: skip
            else:
                events.append({**base, "type": "order.canceled", "order": order})
        elif kind == "again" and events:
            events.append(events[pick % len(events)])
        elif kind == "changed" and events and isinstance(events[pick % len(events)], dict):
            earlier = events[pick % len(events)]
            events.append({**earlier, "occurred_at": at})
    return events


TABLES = {
    "members": """SELECT m.customer_id, m.email, m.points_available, m.points_pending,
                         m.points_lifetime, m.enrolled_at, m.last_activity_at, t.name
                  FROM members m LEFT JOIN tiers t ON t.id = m.tier_id ORDER BY m.customer_id""",
    "orders": """SELECT order_id, customer_id, status, total_amount, eligible_amount,
                        refunded_amount, points_awarded, points_reversed, lines, attributes,
                        detail, occurred_at, currency
                 FROM orders ORDER BY order_id""",
    "ledger": """SELECT m.customer_id, e.kind, e.points, e.state, e.source_type, e.source_id,
                        e.detail, e.occurred_at, e.matures_at
                 FROM ledger_entries e JOIN members m ON m.id = e.member_id
                 ORDER BY m.customer_id, e.source_id, e.kind, e.points""",
    "refunds": """SELECT o.order_id, r.refund_id, r.amount, r.points_reversed, r.occurred_at
                  FROM order_refunds r JOIN orders o ON o.id = r.order_pk ORDER BY r.refund_id""",
    "tier_spend": """SELECT m.customer_id, s.starts_at, s.spend
                     FROM tier_spend s JOIN members m ON m.id = s.member_id
                     ORDER BY m.customer_id, s.starts_at""",
    "tier_changes": """SELECT m.customer_id, c.reason, c.source_id
                       FROM tier_changes c JOIN members m ON m.id = c.member_id
                       ORDER BY m.customer_id, c.source_id""",
    "processed": """SELECT event_id, type, order_id, body_hash, response
                    FROM processed_events ORDER BY event_id""",
    "referral_codes": """SELECT m.customer_id FROM referral_codes r
                         JOIN members m ON m.id = r.member_id ORDER BY 1""",
}
IDS = {"entry_id", "tier_change_id", "id"}
RANDOM = {"code", "url"}  # a new member's referral code, drawn at random


def without_ids(value):
    """A value with the database's own ids (entries, tier changes, members) and the random
    referral codes left out."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items()
                if not (k in IDS and isinstance(v, int)) and k not in RANDOM}  # fmt: skip
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        import json

        try:
            return without_ids(json.loads(value))
        except ValueError:
            return value
    return value


def snapshot(app) -> dict:
    with app.app_context():
        found = {name: [without_ids(list(row)) for row in db.session.execute(text(sql))]
                 for name, sql in TABLES.items()}  # fmt: skip
        found["drift"] = find_drift(db.session)
        db.session.remove()
    return found


def _busy_plan(refused_last: bool = False) -> list:
    """Many orders of each customer, with a refund and a repeat among them: batches of
    members' plain orders applied in groups and waves, with first orders, bonus rules and
    tier crossings; `refused_last`: and a cancellation of a paid order at the end (409), so
    the batch's fast run is undone and its events run one by one."""
    kinds = ["paid"] * 14 + ["refund", "again"] + ["paid"] * 12
    if refused_last:
        kinds.append("cancel")
    return [
        (kind, CUSTOMERS[n % len(CUSTOMERS)],
         [_line(n % 4, 1 + n % 3, 700 * (1 + n % 9), n % 5 == 0)], n, 100)
        for n, kind in enumerate(kinds)
    ]  # fmt: skip


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps, cuts=st.lists(st.integers(1, 30), min_size=1, max_size=6))
@example(plan=_busy_plan(), cuts=[30])
@example(plan=_busy_plan(), cuts=[4, 9])
@example(plan=_busy_plan(refused_last=True), cuts=[30])
def test_single_and_batch_endpoints_leave_the_same_tables(two_apps, plan, cuts):
    (one, one_keys), (many, many_keys) = two_apps
    events = events_of(plan, f"x{next(_examples)}_")
    if not events:
        return
    single = []
    client = one.test_client()
    for event in events:
        response = client.post("/v1/events", json=event, headers=one_keys["storefront"])
        single.append((response.status_code, response.get_json()))
    batched = []
    client, start = many.test_client(), 0
    for size in itertools.cycle(cuts):
        if start >= len(events):
            break
        chunk = events[start : start + size]
        response = client.post(
            "/v1/events/batch", json={"events": chunk}, headers=many_keys["storefront"]
        )
        assert response.status_code == 200, response.get_json()
        batched.extend((r["status"], r["body"]) for r in response.get_json()["results"])
        start += size
    assert [(status, without_ids(body)) for status, body in batched] == [
        (status, without_ids(body)) for status, body in single
    ]
    first, second = snapshot(one), snapshot(many)
    assert first["drift"] == [] and second["drift"] == []
    for name in TABLES:
        assert first[name] == second[name], name
