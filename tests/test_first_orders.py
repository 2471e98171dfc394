"""A new customer's first order (auto-enrolment): on PostgreSQL the member's INSERT is part of
the statement that claims the event and places the order (`intake._claim_and_place_statement`),
and the enrolment's hooks add one statement each where they must. Whichever way it runs
(`FAST_ENROLLMENT` on or off), the answer, the rows and the outboxes are the same."""

import json
import re
import threading

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql

from loyalty.email.models import EmailMessage
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders import intake
from loyalty.orders.models import Order
from loyalty.webhooks.models import WebhookMessage
from referrals.models import ReferralCode
from tests import factories as f
from tests.statements import recorded

ON_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def post_event(client, headers, event):
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_enrolment_insert_writes_every_column_enroll_does():
    """`new_member_values` is the row the order's statement inserts: every column but the id
    and the base tier's id."""
    columns = {c.key for c in Member.__table__.c} - {"id", "tier_id"}
    assert set(members.new_member_values("c", None, None, None, None)) == columns


def test_the_claim_statement_stays_within_what_psycopg_caches():
    """psycopg parses a statement of up to 4096 bytes and 50 parameters once; a longer one at
    every execution, which cost an order event a sixth of its CPU. A column more on `members`
    or `orders` may take the claim statement past that: shorten it again (see its docstring)."""
    for enrol in (False, True):
        compiled = intake._claim_and_place_statement(enrol).compile(dialect=postgresql.dialect())
        assert len(str(compiled).encode()) <= 4096, (enrol, len(str(compiled).encode()))
        assert len(compiled.binds) <= 50, (enrol, len(compiled.binds))


@ON_POSTGRESQL
def test_a_first_order_enrols_in_the_claim_statement_without_savepoints(client, storefront):
    post_event(client, storefront, f.paid("c_known"))  # enrols
    with recorded() as repeat:
        post_event(client, storefront, f.paid("c_known"))
    with recorded() as first:
        body = post_event(client, storefront, f.paid("c_first", name="Ada"))
    assert body["member"]["id"] == "c_first" and body["member"]["referral"]["code"]
    # The tests' own transaction nesting sends a SAVEPOINT pair per request: the app, none more.
    savepoints = [s for s in first if "SAVEPOINT" in s]
    assert len(savepoints) == len([s for s in repeat if "SAVEPOINT" in s])
    sent = [s for s in first if "SAVEPOINT" not in s]
    assert sent[0].startswith("WITH claim AS (INSERT INTO processed_events")
    assert "INSERT INTO members" in sent[0] and "INSERT INTO orders" in sent[0]
    # + the share code, and the referral look that also clears the new member's mark.
    assert sent[1].startswith("INSERT INTO referral_codes")
    assert len(sent) == len([s for s in repeat if "SAVEPOINT" not in s]) + 2, sent


def first_orders(client, admin, storefront, customer: str) -> dict:
    """A new customer's first and second order, and everything they left, with the customer's
    own id, ids and the random share code taken out (two customers' traces compare equal)."""
    answers = [
        post_event(client, storefront, f.paid(customer, name="Ada Lovelace", ip="203.0.113.7",
                                               lines=[f.line(unit_price=4321)]))
        for _ in range(2)
    ]  # fmt: skip
    s = db.session
    s.expire_all()
    member = s.scalars(select(Member).where(Member.customer_id == customer)).one()
    code = s.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member.id))
    row = {c.key: getattr(member, c.key) for c in Member.__table__.c}
    row.pop("id"), row.pop("enrolled_at")
    entries = [
        (e.kind, e.points, e.state, e.source_type, e.detail, e.rule_id)
        for e in s.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member.id).order_by(LedgerEntry.id)
        )
    ]
    orders = [
        (o.member_id == member.id, o.points_awarded, o.detail)
        for o in s.scalars(select(Order).where(Order.customer_id == customer).order_by(Order.id))
    ]
    hooks = [
        (m.type, m.data)
        for m in s.scalars(select(WebhookMessage).order_by(WebhookMessage.id))
        if customer in json.dumps(m.data)
    ]
    emails = [
        (m.template, m.data)
        for m in s.scalars(
            select(EmailMessage)
            .where(EmailMessage.member_id == member.id)
            .order_by(EmailMessage.id)
        )
    ]
    trace = json.dumps(
        {"answers": answers, "member": row, "entries": entries, "orders": orders,
         "webhooks": hooks, "emails": emails},
        sort_keys=True, default=str,
    )  # fmt: skip
    trace = trace.replace(code, "<code>").replace(customer, "<customer>")
    trace = re.sub(r'"(event_id|order_id|id|entry_id|referral_id)": ?"?[\w-]+"?', r'"\1": 0', trace)
    trace = re.sub(r"\d{4}-\d\d-\d\d[T ][\d:.]+(\+00:00|Z)?", "<time>", trace)
    return {"trace": json.loads(trace), "code": code}


@ON_POSTGRESQL
def test_a_first_order_leaves_the_same_answer_and_rows_either_way(
    app, client, admin, storefront, monkeypatch
):
    """Sign-up points, a subscribed `member.enrolled`, the welcome email, the share code, the
    order's points: the same with the member inserted by the order's statement as with
    enrolment step by step (FAST_ENROLLMENT=0)."""
    rule = {"name": "welcome", "trigger": "signup", "points": 50}
    assert client.post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
    endpoint = {
        "url": "https://hooks.example.com/in",
        "events": ["member.enrolled", "points.earned"],
    }
    assert client.post("/v1/webhook-endpoints", json=endpoint, headers=admin).status_code == 201
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "EMAIL_FROM", "rewards@example.com")

    with recorded() as sent:
        fast = first_orders(client, admin, storefront, "c_fast_1")
    assert any(s.startswith("WITH claim") and "INSERT INTO members" in s for s in sent)
    monkeypatch.setitem(app.config, "FAST_ENROLLMENT", False)
    with recorded() as sent:
        slow = first_orders(client, admin, storefront, "c_slow_1")
    assert not any(s.startswith("WITH claim") and "INSERT INTO members" in s for s in sent)

    assert fast["code"] and slow["code"]
    assert fast["trace"] == slow["trace"]
    trace = fast["trace"]
    assert [e[:2] for e in trace["entries"]] == [["bonus", 50], ["earn", 43], ["earn", 43]]
    assert [t for t, _ in trace["webhooks"]] == [
        "member.enrolled",
        "points.earned",
        "points.earned",
    ]
    assert trace["webhooks"][0][1]["points_available"] == 50  # after the sign-up points
    assert [t for t, _ in trace["emails"]][:1] == ["welcome"]
    assert trace["answers"][0]["member"]["points"]["available"] == 50
    assert find_drift(db.session) == []


def test_without_auto_enrolment_a_new_customers_order_earns_nothing_and_enrols_no_one(
    client, admin, storefront
):
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    body = post_event(client, storefront, f.paid("c_guest"))
    assert body["member"] is None and body["effects"] == []
    assert db.session.scalar(select(Member.id).where(Member.customer_id == "c_guest")) is None
    order = db.session.scalars(select(Order).where(Order.customer_id == "c_guest")).one()
    assert order.member_id is None


@pytest.mark.postgres
@pytest.mark.concurrency
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "step-by-step"])
def test_a_first_order_waiting_on_a_concurrent_enrolment_joins_that_member(pg_app, pg_keys, fast):
    """Another transaction has inserted the same customer's member row and not committed: the
    order's statement waits on the customer id, inserts no member and places no order, and the
    order is placed step by step for the member that transaction made — once, with its points."""
    pg_app.config["FAST_ENROLLMENT"] = fast
    client = pg_app.test_client()
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    enrolled = post_event(client, pg_keys["storefront"], f.paid("c_other"))["member"]
    other = psycopg.connect(url)
    other.execute(
        "INSERT INTO members (customer_id, email, email_normalized, enrolled_at, points_available,"
        " points_pending, points_lifetime, tier_id, referral_check)"
        " SELECT 'c_race', 'r@example.com', 'r@example.com', now(), 0, 0, 0,"
        " (SELECT id FROM tiers WHERE threshold = 0), true"
    )
    result = {}

    def send():
        response = pg_app.test_client().post(
            "/v1/events", json=f.paid("c_race", lines=[f.line(unit_price=3000)]),
            headers=pg_keys["storefront"],
        )  # fmt: skip
        result["response"] = (response.status_code, response.get_json())

    sender = threading.Thread(target=send)
    sender.start()
    with psycopg.connect(url, autocommit=True) as watcher:  # until the event waits on our row
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while not watcher.execute(waiting).fetchone()[0] and sender.is_alive():
            sender.join(0.05)
    other.commit()  # the code is the hooks' job: the test's row has none yet
    other.close()
    sender.join(30)
    status, body = result["response"]
    assert status == 200, body
    assert body["member"]["points"]["pending"] == 30
    assert body["member"]["referral"]["code"]  # made on first read, as for a row made by SQL
    with pg_app.app_context():
        [member] = db.session.scalars(select(Member).where(Member.customer_id == "c_race"))
        assert (member.points_pending, member.email) == (30, "r@example.com")
        order = db.session.scalars(select(Order).where(Order.customer_id == "c_race")).one()
        assert order.member_id == member.id
        count = select(func.count()).select_from(LedgerEntry)
        assert db.session.scalar(count.where(LedgerEntry.member_id == member.id)) == 1
        assert find_drift(db.session) == []
    assert enrolled["id"] == "c_other"


@pytest.mark.postgres
@pytest.mark.concurrency
def test_concurrent_first_orders_of_one_new_customer_enrol_once_with_one_code_and_bonus(
    pg_app, pg_keys
):
    """Twelve different first orders and the same one sent six times, all at once, of two new
    customers, with a sign-up rule: each enrolled once, one share code, one sign-up bonus."""
    from concurrent.futures import ThreadPoolExecutor

    client = pg_app.test_client()
    rule = {"name": "welcome", "trigger": "signup", "points": 50}
    made = client.post("/v1/earning-rules", json=rule, headers=pg_keys["admin"])
    assert made.status_code == 201
    same = f.paid("c_twice", lines=[f.line(unit_price=1000)])
    events = [f.paid("c_many", lines=[f.line(unit_price=1000)]) for _ in range(12)] + [same] * 6

    def send(event):
        response = pg_app.test_client().post(
            "/v1/events", json=event, headers=pg_keys["storefront"]
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=9) as pool:
        results = list(pool.map(send, events))
    assert {status for status, _ in results} == {200}, results
    assert sum(1 for _, body in results[12:] if not body["duplicate"]) == 1
    with pg_app.app_context():
        for customer, orders in (("c_many", 12), ("c_twice", 1)):
            [member] = db.session.scalars(select(Member).where(Member.customer_id == customer))
            assert (member.points_available, member.points_pending) == (50, 10 * orders)
            codes = select(func.count()).select_from(ReferralCode)
            assert db.session.scalar(codes.where(ReferralCode.member_id == member.id)) == 1
            kinds = db.session.scalars(
                select(LedgerEntry.kind).where(LedgerEntry.member_id == member.id)
            ).all()
            assert sorted(kinds) == ["bonus"] + ["earn"] * orders
        assert find_drift(db.session) == []
