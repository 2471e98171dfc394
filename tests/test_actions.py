"""Custom actions: `POST /v1/members/{id}/actions` rewarded by action rules, within their caps."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from loyalty.actions.models import MemberAction
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.webhooks.models import WebhookMessage
from tests.tiers.helpers import VIB, beauty_insider, member, order, post_event


def enroll(client, storefront, customer_id="c_1"):
    response = client.post(
        "/v1/members", json={"id": customer_id, "email": f"{customer_id}@example.com"},
        headers=storefront,
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()


def rule(client, admin, **body):
    body = {"trigger": "action", **body}
    response = client.post("/v1/earning-rules", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def act(client, headers, action_id, type_="review", at=None, customer_id="c_1", **extra):
    body = {"id": action_id, "type": type_, "occurred_at": (at or _recent()).isoformat(), **extra}
    return client.post(f"/v1/members/{customer_id}/actions", json=body, headers=headers)


def _recent():
    return datetime.now(UTC) - timedelta(minutes=1)


def awarded(body):
    return [e["points"] for e in body["effects"] if e["kind"] == "bonus"]


def balance(client, storefront, customer_id="c_1"):
    return client.get(f"/v1/members/{customer_id}", headers=storefront).get_json()["points"]


def test_a_review_earns_the_rule_points_once_as_an_explained_entry(
    client, admin, storefront, session
):
    enroll(client, storefront)
    reviews = rule(client, admin, name="Product reviews", points=50,
                   conditions={"action_type": "review"}, caps={"per_month": 3})  # fmt: skip
    response = act(client, storefront, "rv-1", detail={"product": "SERUM", "stars": 5})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["duplicate"] is False and body["action_id"] == "rv-1"
    [effect] = body["effects"]
    assert effect["kind"] == "bonus" and effect["points"] == 50
    assert effect["rule_id"] == reviews["id"] and effect["rule"] == "Product reviews"
    assert effect["state"] == "available"
    points = balance(client, storefront)
    assert points["available"] == 50 and points["lifetime_earned"] == 50

    [entry] = client.get("/v1/members/c_1/activity", headers=storefront).get_json()["items"]
    assert entry["source"] == {"type": "action", "id": "rv-1"}
    assert entry["rule_id"] == reviews["id"] and entry["kind"] == "bonus"
    assert entry["detail"]["rule"] == "Product reviews"
    assert entry["detail"]["action_type"] == "review"
    stored = session.scalars(select(MemberAction)).one()
    assert stored.detail == {"product": "SERUM", "stars": 5} and stored.type == "review"


def test_the_same_action_sent_again_replays_its_answer_and_earns_nothing(client, admin, storefront):
    enroll(client, storefront)
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"})
    at = _recent()
    first = act(client, storefront, "rv-1", at=at).get_json()
    again = act(client, admin, "rv-1", at=at)  # an admin key may report actions too
    assert again.status_code == 200
    assert again.get_json() == {**first, "duplicate": True}
    assert balance(client, storefront)["available"] == 50

    changed = act(client, storefront, "rv-1", at=at, detail={"stars": 1})
    assert changed.status_code == 409
    assert "different body" in changed.get_json()["detail"]


def test_an_action_id_of_another_member_is_refused(client, admin, storefront):
    enroll(client, storefront, "c_1")
    enroll(client, storefront, "c_2")
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"})
    at = _recent()
    assert act(client, storefront, "rv-1", at=at, customer_id="c_1").status_code == 200
    other = act(client, storefront, "rv-1", at=at, customer_id="c_2")
    assert other.status_code == 409
    assert "another member" in other.get_json()["detail"]
    assert balance(client, storefront, "c_2")["available"] == 0


def test_an_unknown_member_is_a_404_and_nobody_is_enrolled(client, admin, storefront):
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"})
    response = act(client, storefront, "rv-1", customer_id="c_nobody")
    assert response.status_code == 404
    assert client.get("/v1/members/c_nobody", headers=storefront).status_code == 404


@pytest.mark.parametrize(
    "change, field",
    [
        ({"colour": "red"}, "colour"),
        ({"type": "Review!"}, "type"),
        ({"type": "x" * 65}, "type"),
        ({"type": ""}, "type"),
        ({"type": "review\n"}, "type"),
        ({"detail": {"text": "x" * 3000}}, "detail"),
        ({"detail": ["not", "an", "object"]}, "detail"),
        ({"occurred_at": "2026-12-06T10:00:00"}, "occurred_at"),  # no time zone
        ({"id": ""}, "id"),
        ({"id": "x" * 129}, "id"),
    ],
)
def test_bad_actions_are_refused_field_by_field(client, storefront, change, field):
    enroll(client, storefront)
    body = {"id": "a-1", "type": "review", "occurred_at": _recent().isoformat(), **change}
    response = client.post("/v1/members/c_1/actions", json=body, headers=storefront)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_an_action_far_in_the_future_is_refused(client, storefront):
    enroll(client, storefront)
    response = act(client, storefront, "a-1", at=datetime.now(UTC) + timedelta(hours=1))
    assert response.status_code == 422
    assert "occurred_at" in response.get_json()["errors"]


def test_an_action_older_than_the_window_is_refused_and_changes_nothing(
    app, client, storefront, admin
):
    enroll(client, storefront)
    rule = {"name": "Reviews", "trigger": "action", "points": 50,
            "conditions": {"action_type": "review"}, "caps": {"per_day": 1}}  # fmt: skip
    assert client.post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
    days = app.config["ACTION_MAX_AGE_DAYS"]
    old = datetime.now(UTC) - timedelta(days=days, minutes=1)
    response = act(client, storefront, "a-old", at=old)
    assert response.status_code == 422
    assert response.get_json()["errors"]["occurred_at"] == [f"More than {days} days ago."]
    inside = datetime.now(UTC) - timedelta(days=days) + timedelta(minutes=1)
    assert act(client, storefront, "a-late", at=inside).get_json()["effects"][0]["points"] == 50
    member = client.get("/v1/members/c_1", headers=admin).get_json()
    assert member["points"]["available"] == 50  # the refused one gave nothing


def test_a_widget_token_or_no_key_cannot_report_actions(client, storefront):
    enroll(client, storefront)
    assert act(client, {}, "a-1").status_code == 401
    token = client.post(
        "/v1/widget-tokens", json={"customer_id": "c_1"}, headers=storefront
    ).get_json()["token"]
    assert act(client, {"Authorization": f"Bearer {token}"}, "a-1").status_code == 403


@pytest.fixture
def dated_freely(app):
    """Actions dated on fixed days of the past (the age window opened wide for the test)."""
    kept = app.config["ACTION_MAX_AGE_DAYS"]
    app.config["ACTION_MAX_AGE_DAYS"] = 100_000
    yield
    app.config["ACTION_MAX_AGE_DAYS"] = kept


@pytest.mark.usefixtures("dated_freely")
def test_caps_per_day_per_month_and_lifetime(client, admin, storefront):
    enroll(client, storefront)
    daily = rule(client, admin, name="Daily check-in", points=5,
                 conditions={"action_type": "check_in"}, caps={"per_day": 2})  # fmt: skip
    monthly = rule(client, admin, name="Reviews", points=50,
                   conditions={"action_type": "review"}, caps={"per_month": 3})  # fmt: skip
    once = rule(client, admin, name="Follow us", points=100,
                conditions={"action_type": "social_follow"}, caps={"lifetime": 1})  # fmt: skip
    day1 = datetime(2026, 11, 3, 9, tzinfo=UTC)
    got = [awarded(act(client, storefront, f"ci-{i}", "check_in", day1).get_json())
           for i in range(3)]  # fmt: skip
    assert got == [[5], [5], []]
    capped = act(client, storefront, "ci-x", "check_in", day1 + timedelta(hours=1)).get_json()
    expected = {"kind": "capped", "rule_id": daily["id"], "rule": "Daily check-in",
                "cap": "per_day", "limit": 2}  # fmt: skip
    assert capped["effects"] == [expected]
    assert awarded(act(client, storefront, "ci-next", "check_in", day1 + timedelta(days=1))
                   .get_json()) == [5]  # fmt: skip

    months = [datetime(2026, 10, d, tzinfo=UTC) for d in (1, 9, 20, 31)]
    got = [awarded(act(client, storefront, f"rv-{i}", "review", at).get_json())
           for i, at in enumerate(months)]  # fmt: skip
    assert got == [[50], [50], [50], []]
    assert awarded(act(client, storefront, "rv-nov", "review", day1).get_json()) == [50]
    last = act(client, storefront, "rv-late", "review", datetime(2026, 10, 2, tzinfo=UTC))
    assert last.get_json()["effects"][0]["cap"] == "per_month"

    assert awarded(act(client, storefront, "f-1", "social_follow", day1).get_json()) == [100]
    later = act(client, storefront, "f-2", "social_follow", datetime(2026, 11, 30, tzinfo=UTC))
    assert later.get_json()["effects"][0] == {
        "kind": "capped", "rule_id": once["id"], "rule": "Follow us", "cap": "lifetime",
        "limit": 1,
    }  # fmt: skip
    assert monthly["caps"] == {"per_month": 3}
    assert balance(client, storefront)["available"] == 5 * 3 + 50 * 4 + 100


@pytest.mark.usefixtures("dated_freely")
def test_days_and_months_are_the_program_time_zone(client, admin, storefront):
    enroll(client, storefront)
    response = client.put("/v1/program", json={"timezone": "America/New_York"}, headers=admin)
    assert response.status_code == 200, response.get_json()
    rule(client, admin, name="Daily", points=5, conditions={"action_type": "check_in"},
         caps={"per_day": 1})  # fmt: skip
    # 03:00 UTC on 3 November is still 2 November in New York; 06:00 UTC is the 3rd.
    assert awarded(act(client, storefront, "a", "check_in",
                       datetime(2026, 11, 3, 3, tzinfo=UTC)).get_json()) == [5]  # fmt: skip
    assert awarded(act(client, storefront, "b", "check_in",
                       datetime(2026, 11, 3, 6, tzinfo=UTC)).get_json()) == [5]  # fmt: skip
    assert awarded(act(client, storefront, "c", "check_in",
                       datetime(2026, 11, 3, 20, tzinfo=UTC)).get_json()) == []  # fmt: skip


def test_a_rule_without_caps_awards_every_action(client, admin, storefront):
    enroll(client, storefront)
    rule(
        client, admin, name="Newsletter", points=10, conditions={"action_type": "newsletter_signup"}
    )
    for i in range(5):
        assert awarded(act(client, storefront, f"n-{i}", "newsletter_signup").get_json()) == [10]
    assert balance(client, storefront)["available"] == 50


def test_inactive_ended_other_type_and_other_tier_rules_give_nothing(client, admin, storefront):
    enroll(client, storefront)
    paused = rule(client, admin, name="Paused", points=10, active=False,
                  conditions={"action_type": "review"})  # fmt: skip
    rule(client, admin, name="Ended", points=10, conditions={"action_type": "review"},
         starts_at="2020-01-01T00:00:00Z", ends_at="2021-01-01T00:00:00Z")  # fmt: skip
    rule(client, admin, name="Profiles", points=10, conditions={"action_type": "profile_completed"})
    assert act(client, storefront, "rv-1").get_json()["effects"] == []
    client.patch(f"/v1/earning-rules/{paused['id']}", json={"active": True}, headers=admin)
    assert awarded(act(client, storefront, "rv-2").get_json()) == [10]


def test_overlapping_rules_each_award_and_each_keep_their_caps(client, admin, storefront):
    enroll(client, storefront)
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"},
         caps={"lifetime": 1})  # fmt: skip
    rule(client, admin, name="Review week", points=20, conditions={"action_type": "review"})
    assert awarded(act(client, storefront, "rv-1").get_json()) == [50, 20]
    assert awarded(act(client, storefront, "rv-2").get_json()) == [20]


def test_action_rules_are_validated_strictly(client, admin):
    def refused(**body):
        response = client.post(
            "/v1/earning-rules", json={"name": "r", "trigger": "action", **body}, headers=admin
        )
        assert response.status_code == 422, response.get_json()
        return response.get_json()["errors"]

    assert "conditions" in refused(points=5)  # no action_type
    assert "multiplier" in refused(multiplier="2", conditions={"action_type": "review"})
    assert "conditions" in refused(points=5, conditions={"action_type": "review", "skus": ["A"]})
    assert "conditions" in refused(points=5, conditions={"action_type": "Review"})
    assert "caps" in refused(points=5, conditions={"action_type": "review"}, caps={"weekly": 1})
    assert "caps" in refused(points=5, conditions={"action_type": "review"}, caps={"per_day": 0})
    order_caps = client.post("/v1/earning-rules", headers=admin, json={
        "name": "o", "trigger": "order", "points": 5, "caps": {"per_day": 1}})  # fmt: skip
    assert order_caps.status_code == 422 and "caps" in order_caps.get_json()["errors"]
    typed = {"name": "o", "trigger": "order", "points": 5, "conditions": {"action_type": "review"}}
    order_type = client.post("/v1/earning-rules", headers=admin, json=typed)
    assert order_type.status_code == 422


def test_caps_can_be_changed_and_count_awards_made_before(client, admin, storefront):
    enroll(client, storefront)
    reviews = rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"})
    assert reviews["caps"] is None
    for i in range(2):
        act(client, storefront, f"rv-{i}")
    response = client.patch(f"/v1/earning-rules/{reviews['id']}", json={"caps": {"per_month": 2}},
                            headers=admin)  # fmt: skip
    assert response.status_code == 200 and response.get_json()["caps"] == {"per_month": 2}
    assert act(client, storefront, "rv-3").get_json()["effects"][0]["kind"] == "capped"
    off = client.patch(f"/v1/earning-rules/{reviews['id']}", json={"caps": None}, headers=admin)
    assert off.get_json()["caps"] is None
    assert awarded(act(client, storefront, "rv-4").get_json()) == [50]


def test_an_award_emits_points_earned(client, admin, storefront, session):
    enroll(client, storefront)
    hook = {"url": "https://hooks.example.com/x", "events": ["points.earned"]}
    assert client.post("/v1/webhook-endpoints", json=hook, headers=admin).status_code == 201
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"})
    act(client, storefront, "rv-1")
    act(client, storefront, "rv-1")  # a replay reports nothing again
    act(client, storefront, "other-1", "unrewarded")  # nothing earned: nothing reported
    [message] = session.scalars(select(WebhookMessage)).all()
    assert message.type == "points.earned"
    assert message.data["customer_id"] == "c_1" and message.data["points"] == 50
    assert message.data["action_id"] == "rv-1" and message.data["action_type"] == "review"
    assert message.data["order_id"] is None and message.data["state"] == "available"


def test_erasure_forgets_the_detail_and_export_lists_actions(client, admin, storefront, session):
    enroll(client, storefront)
    act(client, storefront, "rv-1", detail={"author": "Ana Example"})
    exported = client.get("/v1/members/c_1/export", headers=admin).get_json()
    assert [a["id"] for a in exported["actions"]] == ["rv-1"]
    assert exported["actions"][0]["detail"] == {"author": "Ana Example"}
    assert client.delete("/v1/members/c_1", headers=admin).status_code == 204
    assert session.scalars(select(MemberAction.detail)).one() == {}
    assert act(client, storefront, "rv-2").status_code == 404


def test_ledger_has_no_drift_after_actions(client, admin, storefront, session, runner):
    enroll(client, storefront)
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"},
         caps={"per_day": 2})  # fmt: skip
    for i in range(4):
        act(client, storefront, f"rv-{i}")
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 2
    assert find_drift(session) == []
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


# --- PostgreSQL, real commits from many connections at once -----------------------------------


def _in_parallel(count, call):
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@pytest.mark.postgres
@pytest.mark.concurrency
def test_20_concurrent_reviews_with_a_cap_of_3_a_month_award_exactly_3(pg_app, pg_keys):
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    client = pg_app.test_client()
    enroll(client, storefront, "c_busy")
    rule(client, admin, name="Reviews", points=50, conditions={"action_type": "review"},
         caps={"per_month": 3})  # fmt: skip
    rule(client, admin, name="Follow", points=100, conditions={"action_type": "social_follow"},
         caps={"lifetime": 1})  # fmt: skip
    at = _recent()

    def review(i):
        response = act(pg_app.test_client(), storefront, f"rv-{i}", at=at, customer_id="c_busy")
        return response.status_code, awarded(response.get_json())

    def follow(i):
        # The same follow reported under 10 ids and one id sent 10 times, all at once.
        action_id = f"f-{i}" if i < 10 else "f-same"
        response = act(pg_app.test_client(), storefront, action_id, "social_follow", at=at,
                       customer_id="c_busy")  # fmt: skip
        body = response.get_json()
        return response.status_code, [] if body["duplicate"] else awarded(body)

    reviews = _in_parallel(20, review)
    assert {status for status, _ in reviews} == {200}
    assert sorted(len(points) for _, points in reviews) == [0] * 17 + [1] * 3
    follows = _in_parallel(20, follow)
    assert {status for status, _ in follows} == {200}
    assert sum(len(points) for _, points in follows) == 1  # replays of f-same not counted
    with pg_app.app_context():
        entries = db.session.execute(
            select(LedgerEntry.source_id, LedgerEntry.points).order_by(LedgerEntry.id)
        ).all()
        assert sorted(points for _, points in entries) == [50, 50, 50, 100]
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_busy")).one()
        assert (member.points_available, member.points_lifetime) == (250, 250)
        assert find_drift(db.session) == []
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_a_rule_for_some_tiers_awards_only_their_members_at_the_rate_of_no_tier(
    client, admin, storefront
):
    beauty_insider(client, admin)  # VIB earns ×1.25 on orders: fixed points are not multiplied
    enroll(client, storefront, "c_low")
    post_event(client, storefront, order(VIB, _recent() - timedelta(days=1), "c_vib"))
    assert member(client, storefront, "c_vib")["tier"]["name"] == "VIB"
    rule(client, admin, name="VIB reviews", points=40,
         conditions={"action_type": "review", "tiers": ["VIB"]})  # fmt: skip
    assert awarded(act(client, storefront, "rv-low", customer_id="c_low").get_json()) == []
    assert awarded(act(client, storefront, "rv-vib", customer_id="c_vib").get_json()) == [40]
