"""Win-back: lapse rules ("no paid order for N days: X points, once per lapse") and the
`member.lapsing` event, both from the `lapsing-members` job."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from loyalty.earning import lapses
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift, post_entry
from loyalty.members.models import Member
from loyalty.webhooks.models import WebhookMessage
from tests import factories as f
from tests.factories import run_job
from tests.tiers.helpers import beauty_insider, member, post_event
from tests.webhooks.helpers import create_endpoint

PAID_AT = datetime(2026, 1, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def rule(client, admin, **body):
    body = {"name": "Come back", "trigger": "lapse", "points": 200,
            "conditions": {"days": 90}, **body}  # fmt: skip
    response = client.post("/v1/earning-rules", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def lapse_entries(session, customer_id=None):
    query = select(LedgerEntry).where(LedgerEntry.source_type == "lapse")
    if customer_id is not None:
        query = query.join(Member, Member.id == LedgerEntry.member_id).where(
            Member.customer_id == customer_id
        )
    return list(session.scalars(query.order_by(LedgerEntry.id)))


def available(client, headers, customer_id="c_1"):
    return member(client, headers, customer_id)["points"]["available"]


def lapsing():
    query = select(WebhookMessage).where(WebhookMessage.type == "member.lapsing")
    return [m.data for m in db.session.scalars(query.order_by(WebhookMessage.id))]


def test_points_once_per_lapse_from_the_day_it_is_crossed(
    client, admin, storefront, runner, session
):
    made = rule(client, admin)
    post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT))
    before = available(client, admin)
    assert "lapsing-members: 0 changed" in run_job(
        runner, "lapsing-members", PAID_AT + 90 * DAY - timedelta(seconds=1)
    )
    assert "lapsing-members: 1 changed" in run_job(runner, "lapsing-members", PAID_AT + 90 * DAY)
    assert "lapsing-members: 0 changed" in run_job(runner, "lapsing-members", PAID_AT + 91 * DAY)
    assert "lapsing-members: 0 changed" in run_job(runner, "lapsing-members", PAID_AT + 96 * DAY)
    assert available(client, admin) == before + 200
    [entry] = lapse_entries(session)
    assert (entry.kind, entry.points, entry.rule_id, entry.state) == (
        "bonus", 200, made["id"], "available")  # fmt: skip
    assert entry.source_id == "2026-01-01T12:00:00+00:00"  # the lapse: the last paid order
    assert entry.detail == {"rule": "Come back", "trigger": "lapse", "days": 90,
                            "days_without_order": 90,
                            "last_paid_order_at": "2026-01-01T12:00:00+00:00"}  # fmt: skip
    activity = client.get("/v1/members/c_1/activity", headers=admin).get_json()["items"]
    assert activity[0]["source"] == {"type": "lapse", "id": "2026-01-01T12:00:00+00:00"}
    assert activity[0]["rule_id"] == made["id"]

    # A new order, then 90 more days without one: a new lapse, awarded again.
    post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT + 100 * DAY))
    assert "0 changed" in run_job(runner, "lapsing-members", PAID_AT + 189 * DAY)
    assert "1 changed" in run_job(runner, "lapsing-members", PAID_AT + 192 * DAY)
    late = lapse_entries(session)[-1]
    assert late.source_id == "2026-04-11T12:00:00+00:00"
    assert late.detail["days_without_order"] == 92  # the job ran two days late
    assert available(client, admin) == before + 400
    assert find_drift(session) == []
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_a_lapse_long_past_is_not_awarded_by_a_new_rule(client, admin, storefront, runner, session):
    post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT))
    rule(client, admin)
    # 90 days were crossed more than a week before the job (or the rule) saw it.
    run_job(runner, "lapsing-members", PAID_AT + 98 * DAY)
    assert lapse_entries(session) == []


def test_never_ordered_and_erased_members_do_not_lapse(client, admin, storefront, runner, session):
    rule(client, admin)
    create_endpoint(client, admin, "https://hooks.example.com/w", ["member.lapsing"])
    client.post("/v1/members", json={"id": "c_never", "email": "n@example.com"}, headers=admin)
    post_event(client, storefront, f.paid("c_gone", occurred_at=PAID_AT))
    assert client.delete("/v1/members/c_gone", headers=admin).status_code == 204
    run_job(runner, "lapsing-members", PAID_AT + 90 * DAY)
    run_job(runner, "lapsing-members", datetime.now(UTC) + 90 * DAY)
    assert lapse_entries(session) == []
    assert lapsing() == []


def test_a_member_who_joined_after_their_last_order_lapses_counted_from_joining(
    client, admin, storefront, runner, session
):
    rule(client, admin)
    client.post("/v1/members", json={"id": "c_new", "email": "new@example.com"}, headers=admin)
    joined = datetime.fromisoformat(member(client, admin, "c_new")["enrolled_at"])
    old = joined - 200 * DAY  # an order from before they joined
    post_event(client, storefront, f.paid("c_new", occurred_at=old))
    run_job(runner, "lapsing-members", joined + DAY)
    run_job(runner, "lapsing-members", joined + 89 * DAY)
    assert lapse_entries(session) == []
    run_job(runner, "lapsing-members", joined + 90 * DAY + timedelta(minutes=1))
    [entry] = lapse_entries(session)
    assert entry.detail["days_without_order"] == 290
    assert entry.source_id == old.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def test_tiers_condition_and_rules_not_live(client, admin, storefront, runner, session):
    beauty_insider(client, admin)
    rule(client, admin, name="VIB only", points=500, conditions={"days": 90, "tiers": ["VIB"]})
    rule(client, admin, name="Paused", points=7, active=False)
    rule(client, admin, name="Over", points=9, ends_at="2026-02-01T00:00:00Z")
    rule(client, admin, name="Later", points=11, starts_at="2027-01-01T00:00:00Z")
    post_event(client, storefront, f.paid("c_plain", occurred_at=PAID_AT))
    vib_order = [f.line(unit_price=40_000)]
    post_event(client, storefront, f.paid("c_vib", lines=vib_order, occurred_at=PAID_AT))
    assert member(client, admin, "c_vib")["tier"]["name"] == "VIB"
    run_job(runner, "lapsing-members", PAID_AT + 90 * DAY)
    awarded = {(e.detail["rule"], e.points) for e in lapse_entries(session)}
    assert awarded == {("VIB only", 500)}
    assert [e.points for e in lapse_entries(session, "c_vib")] == [500]
    assert find_drift(session) == []


def test_member_lapsing_once_per_crossing_and_says_what_was_awarded(
    app, client, admin, storefront, runner
):
    create_endpoint(client, admin, "https://hooks.example.com/w", ["member.lapsing"])
    made = rule(client, admin)
    app.config["MEMBER_LAPSE_DAYS"] = 60
    try:
        post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT))
        start = available(client, admin)
        for days in (59, 60, 61, 90, 91, 95):
            run_job(runner, "lapsing-members", PAID_AT + days * DAY)
        first, second = lapsing()
        assert first == {"customer_id": "c_1", "last_paid_order_at": "2026-01-01T12:00:00+00:00",
                         "days_without_order": 60, "points_available": start,
                         "tier_id": first["tier_id"], "points_awarded": 0}  # fmt: skip
        assert second == {**first, "days_without_order": 90, "points_available": start + 200,
                          "points_awarded": 200}  # fmt: skip
        # Paused: the crossing is reported, nothing awarded.
        client.patch(f"/v1/earning-rules/{made['id']}", json={"active": False}, headers=admin)
        app.config["MEMBER_LAPSE_DAYS"] = 0
        post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT + 100 * DAY))
        run_job(runner, "lapsing-members", PAID_AT + 190 * DAY)
        assert len(lapsing()) == 2  # no live rule and no MEMBER_LAPSE_DAYS: no threshold
        app.config["MEMBER_LAPSE_DAYS"] = 90
        run_job(runner, "lapsing-members", PAID_AT + 191 * DAY)
        third = lapsing()[2]
        assert (third["days_without_order"], third["points_awarded"]) == (90, 0)
    finally:
        app.config["MEMBER_LAPSE_DAYS"] = 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trigger": "lapse", "points": 5}, "conditions"),  # no days
        ({"trigger": "lapse", "points": 5, "conditions": {"days": 0}}, "conditions"),
        ({"trigger": "lapse", "points": 5, "conditions": {"days": 3651}}, "conditions"),
        ({"trigger": "lapse", "points": 5, "conditions": {"days": "90"}}, "conditions"),
        ({"trigger": "lapse", "multiplier": "2", "conditions": {"days": 90}}, "multiplier"),
        ({"trigger": "lapse", "points": 5, "conditions": {"days": 90, "skus": ["A"]}},
         "conditions"),
        ({"trigger": "lapse", "points": 5, "conditions": {"days": 90},
          "caps": {"lifetime": 1}}, "caps"),
        ({"trigger": "order", "points": 5, "conditions": {"days": 90}}, "conditions"),
        ({"trigger": "birthday", "points": 5, "conditions": {"days": 90}}, "conditions"),
    ],
)  # fmt: skip
def test_invalid_lapse_rules_are_refused(client, admin, body, field):
    response = client.post("/v1/earning-rules", json={"name": "x", **body}, headers=admin)
    assert response.status_code == 422, body
    assert field in response.get_json()["errors"], response.get_json()


def test_a_rule_changed_to_a_lapse_rule_needs_its_days(client, admin):
    made = rule(client, admin, trigger="signup", conditions={})
    url = f"/v1/earning-rules/{made['id']}"
    assert client.patch(url, json={"trigger": "lapse"}, headers=admin).status_code == 422
    changed = client.patch(url, json={"trigger": "lapse", "conditions": {"days": 30}},
                           headers=admin)  # fmt: skip
    assert changed.status_code == 200
    assert changed.get_json()["conditions"] == {"days": 30}


def test_the_ledger_refuses_a_second_award_for_one_lapse(client, admin, storefront, session):
    made = rule(client, admin)
    post_event(client, storefront, f.paid("c_1", occurred_at=PAID_AT))
    member_id = session.scalar(select(Member.id).where(Member.customer_id == "c_1"))

    def award():
        post_entry(session, member_id, "bonus", 200, source_type="lapse",
                   source_id="2026-01-01T12:00:00+00:00", rule_id=made["id"])  # fmt: skip

    award()
    with pytest.raises(IntegrityError), session.begin_nested():
        award()


# --- two machines at once ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.concurrency
def test_concurrent_runs_award_each_lapse_once(pg_app, pg_keys):
    client = pg_app.test_client()
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    rule(client, admin)
    create_endpoint(client, admin, "https://hooks.example.com/w", ["member.lapsing"])
    customers = [f"c_{i}" for i in range(12)]
    for customer_id in customers:
        post_event(client, storefront, f.paid(customer_id, occurred_at=PAID_AT))
    now = PAID_AT + 90 * DAY
    start = threading.Barrier(4)
    results: list[int] = []

    def run_job_here():
        with pg_app.app_context():
            start.wait()
            results.append(lapses.lapsing_members(db.session, now, batch_size=3))
            db.session.commit()

    threads = [threading.Thread(target=run_job_here) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 2 * len(customers)  # each award and each event once, in all
    with pg_app.app_context():
        entries = db.session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.source_type == "lapse")
        )
        assert entries == len(customers)
        assert len(lapsing()) == len(customers)
        assert find_drift(db.session) == []
    for customer_id in customers:
        assert available(client, admin, customer_id) == 200
