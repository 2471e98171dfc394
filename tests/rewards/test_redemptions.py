"""Catalog and redemptions over HTTP, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from loyalty.codes import UNAMBIGUOUS
from loyalty.ledger import LedgerEntry
from loyalty.members.models import Member
from loyalty.tiers.models import Tier
from rewards.catalog import service, widget
from tests.rewards.helpers import make_member, make_reward, points, redeem


def test_catalog_crud_with_kinds_and_soft_delete(client, admin):
    created = make_reward(client, admin, stock=3, per_member_limit=2, min_order=1000)
    assert created["kind"] == "amount_off" and created["amount"] == 1000
    assert created["stock"] == 3 and created["code_valid_days"] == 90 and created["active"]
    percent = make_reward(client, admin, name="15%", kind="percent_off", amount=None, percent=15)
    assert percent["percent"] == 15 and percent["amount"] is None
    sample = make_reward(client, admin, name="S", kind="free_product", amount=None, sku="SMP")
    assert sample["sku"] == "SMP"
    ship = make_reward(client, admin, name="Ship", kind="free_shipping", amount=None)
    assert ship["kind"] == "free_shipping"

    patched = client.patch(
        f"/v1/rewards/{created['id']}", json={"points_cost": 600, "stock": None}, headers=admin
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["points_cost"] == 600 and patched.get_json()["stock"] is None

    listed = client.get("/v1/rewards?limit=2", headers=admin).get_json()
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    rest = client.get(f"/v1/rewards?cursor={listed['next_cursor']}", headers=admin).get_json()
    assert [r["id"] for r in listed["items"] + rest["items"]] == [
        created["id"], percent["id"], sample["id"], ship["id"]
    ]  # fmt: skip

    assert client.delete(f"/v1/rewards/{ship['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/rewards/{ship['id']}", headers=admin).status_code == 404
    assert ship["id"] not in [
        r["id"] for r in client.get("/v1/rewards", headers=admin).json["items"]
    ]


def test_catalog_refuses_inconsistent_kinds_and_bad_bounds(client, admin, session):
    bad = [
        {"kind": "amount_off", "amount": None},
        {"kind": "percent_off", "amount": None, "percent": 101},
        {"kind": "percent_off", "percent": 10},  # amount given to a percent reward
        {"kind": "free_product", "amount": None},
        {"points_cost": 0},
        {"points_cost": "500"},
        {"stock": -1},
        {"tier": "Nope"},
        {"unknown": 1},
        {"starts_at": "2027-01-02T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"},
    ]
    for fields in bad:
        body = {"name": "x", "kind": "amount_off", "amount": 1000, "points_cost": 500, **fields}
        response = client.post("/v1/rewards", json=body, headers=admin)
        assert response.status_code == 422, (fields, response.get_json())
        assert response.get_json()["type"] == "validation-error"
    assert client.get("/v1/rewards", headers=admin).get_json()["items"] == []
    created = make_reward(client, admin)
    response = client.patch(
        f"/v1/rewards/{created['id']}", json={"kind": "percent_off"}, headers=admin
    )
    assert response.status_code == 422
    assert client.get(f"/v1/rewards/{created['id']}", headers=admin).json["kind"] == "amount_off"


def test_catalog_is_admin_only(client, storefront):
    assert client.get("/v1/rewards", headers=storefront).status_code == 403
    assert client.post("/v1/rewards", json={}, headers=storefront).status_code == 403


def test_redeem_debits_points_and_issues_a_single_use_code(client, admin, storefront, session):
    make_member(client, admin, points=1200)
    reward = make_reward(client, admin, stock=10)
    response = redeem(client, storefront, "c_1", reward["id"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "issued" and body["points_spent"] == 500
    assert body["reward"]["id"] == reward["id"]
    assert len(body["code"]) >= 16 and set(body["code"]) <= set(UNAMBIGUOUS)
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    assert points(client, storefront, "c_1")["available"] == 700
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 9
    entry = session.query(LedgerEntry).filter_by(kind="redeem").one()
    assert entry.points == -500 and entry.source_id == str(body["id"])
    member = session.query(Member).filter_by(customer_id="c_1").one()
    assert member.last_activity_at is not None  # a redemption is activity (inactivity expiry)

    listed = client.get("/v1/members/c_1/redemptions", headers=storefront).get_json()
    assert [r["code"] for r in listed["items"]] == [body["code"]]
    assert listed["next_cursor"] is None


def test_insufficient_points_changes_nothing(client, admin, storefront):
    make_member(client, admin, points=499)
    reward = make_reward(client, admin, stock=1)
    response = redeem(client, storefront, "c_1", reward["id"])
    assert response.status_code == 422
    assert response.get_json()["type"] == "insufficient-points"
    assert points(client, storefront, "c_1")["available"] == 499
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 1
    assert client.get("/v1/members/c_1/redemptions", headers=storefront).json["items"] == []


def test_unavailable_rewards_say_why(client, admin, storefront):
    make_member(client, admin, points=5000)
    out = make_reward(client, admin, stock=0)
    inactive = make_reward(client, admin, active=False)
    later = make_reward(client, admin, starts_at="2999-01-01T00:00:00Z")
    limited = make_reward(client, admin, per_member_limit=2)
    for reward, reason in ((out, "out_of_stock"), (inactive, "inactive"), (later, "inactive")):
        response = redeem(client, storefront, "c_1", reward["id"])
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["type"] == "reward-unavailable"
        assert response.get_json()["reason"] == reason
    first = redeem(client, storefront, "c_1", limited["id"])
    assert redeem(client, storefront, "c_1", limited["id"]).status_code == 201
    third = redeem(client, storefront, "c_1", limited["id"])
    assert third.status_code == 409 and third.get_json()["reason"] == "limit_reached"
    assert points(client, storefront, "c_1")["available"] == 4000
    # A canceled redemption gives its turn back.
    cancel = client.post(f"/v1/redemptions/{first.json['id']}/cancel", headers=storefront)
    assert cancel.status_code == 200
    assert redeem(client, storefront, "c_1", limited["id"]).status_code == 201
    assert redeem(client, storefront, "c_1", 999999).status_code == 404


def test_tier_requirement(client, admin, storefront, session):
    rouge = Tier(name="Rouge", threshold=100000, multiplier=1, perks=[])
    session.add(rouge)
    session.flush()
    make_member(client, admin, "c_low", points=5000)
    make_member(client, admin, "c_rouge", points=5000)
    session.query(Member).filter_by(customer_id="c_rouge").update({"tier_id": rouge.id})
    session.commit()
    by_name = make_reward(client, admin, tier="Rouge")
    by_id = make_reward(client, admin, tier=rouge.id)
    assert by_name["tier"] == by_id["tier"] == "Rouge" and by_name["tier_id"] == rouge.id
    refused = redeem(client, storefront, "c_low", by_name["id"])
    assert refused.status_code == 409 and refused.get_json()["reason"] == "tier_required"
    assert points(client, storefront, "c_low")["available"] == 5000
    assert redeem(client, storefront, "c_rouge", by_id["id"]).status_code == 201


def test_cancel_returns_points_and_stock_once(client, admin, storefront, session):
    make_member(client, admin, points=500)
    reward = make_reward(client, admin, stock=1)
    code = redeem(client, storefront, "c_1", reward["id"]).get_json()
    assert points(client, storefront, "c_1")["available"] == 0
    response = client.post(f"/v1/redemptions/{code['id']}/cancel", headers=storefront)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "canceled"
    assert points(client, storefront, "c_1")["available"] == 500
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 1
    again = client.post(f"/v1/redemptions/{code['id']}/cancel", headers=storefront)
    assert again.status_code == 409 and again.get_json()["type"] == "conflict"
    assert points(client, storefront, "c_1")["available"] == 500
    kinds = [e.kind for e in session.query(LedgerEntry).order_by(LedgerEntry.id)]
    assert kinds == ["adjust", "redeem", "redeem_cancel"]
    assert client.post("/v1/redemptions/999999/cancel", headers=storefront).status_code == 404


def test_service_functions_for_the_widget(client, admin, session):
    make_member(client, admin, points=600)
    cheap = make_reward(client, admin, points_cost=500)
    dear = make_reward(client, admin, points_cost=700)
    gone = make_reward(client, admin, points_cost=100, stock=0)
    member = session.query(Member).filter_by(customer_id="c_1").one()
    items = {r["id"]: r for r in widget.member_rewards(session, member)}
    assert items[cheap["id"]]["affordable"] and items[cheap["id"]]["redeemable"]
    assert not items[dear["id"]]["affordable"]
    assert items[gone["id"]]["affordable"] and not items[gone["id"]]["redeemable"]
    assert items[gone["id"]]["unavailable_reason"] == "out_of_stock"
    result = widget.redeem(session, member, cheap["id"])
    assert result["status"] == "issued" and result["points_spent"] == 500
    assert member.points_available == 100


def test_bad_redemption_input_is_refused_and_changes_nothing(client, admin, storefront, session):
    make_member(client, admin, points=1000)
    reward = make_reward(client, admin, stock=2)
    for body in ({"reward_id": str(reward["id"])}, {"reward_id": reward["id"], "x": 1}, {},
                 {"reward_id": 2**40}, {"reward_id": None}):  # fmt: skip
        response = client.post("/v1/members/c_1/redemptions", json=body, headers=storefront)
        assert response.status_code == 422, (body, response.get_json())
        assert response.get_json()["type"] == "validation-error"
    assert redeem(client, storefront, "nobody", reward["id"]).status_code == 404
    assert points(client, storefront, "c_1")["available"] == 1000
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 2
    assert session.query(LedgerEntry).filter_by(kind="redeem").count() == 0
    bad_validate = client.post(
        "/v1/reward-codes/validate",
        json={"code": "X", "customer_id": "c_1", "subtotal": -1},
        headers=storefront,
    )
    assert bad_validate.status_code == 422
    assert bad_validate.get_json()["type"] == "validation-error"


def test_idempotency_key_redeems_once(client, admin, storefront):
    make_member(client, admin, points=1000)
    reward = make_reward(client, admin)
    headers = {**storefront, "Idempotency-Key": "redeem-1"}
    first = redeem(client, headers, "c_1", reward["id"])
    again = redeem(client, headers, "c_1", reward["id"])
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert points(client, storefront, "c_1")["available"] == 500


def test_openapi_documents_the_reward_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/v1/rewards", "/v1/rewards/{reward_id}", "/v1/reward-codes/validate",
                 "/v1/members/{customer_id}/redemptions",
                 "/v1/redemptions/{redemption_id}/cancel"):  # fmt: skip
        assert path in paths


def test_a_code_collision_draws_again(client, admin, session, monkeypatch):
    make_member(client, admin, points=1000)
    reward = make_reward(client, admin)
    member = session.query(Member).filter_by(customer_id="c_1").one()
    draws = iter(["AAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB"])
    monkeypatch.setattr(service, "random_code", lambda _length: next(draws))
    first = service.redeem(session, member, reward["id"])
    second = service.redeem(session, member, reward["id"])
    assert (first.code, second.code) == ("AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB")
    assert member.points_available == 0


def test_codes_given_for_a_reward_do_not_use_up_the_member_limit(client, admin, storefront,
                                                                  session):  # fmt: skip
    make_member(client, admin, points=500)
    reward = make_reward(client, admin, per_member_limit=1)
    member = session.query(Member).filter_by(customer_id="c_1").one()
    given = service.issue_reward_code(
        session, kind="amount_off", amount=1000, valid_days=30, member_id=member.id,
        reward_id=reward["id"], source_type="referral", source_id="3",
    )  # fmt: skip
    session.commit()
    assert given.customer_id == "c_1"  # the owner is taken from the member
    assert redeem(client, storefront, "c_1", reward["id"]).status_code == 201
    again = redeem(client, storefront, "c_1", reward["id"])
    assert again.status_code == 409 and again.get_json()["reason"] == "limit_reached"
