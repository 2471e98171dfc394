"""Tier configuration: CRUD, the rules of a valid tier list, the preview."""

from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.members.models import Member
from loyalty.tiers.models import Tier, TierChange
from tests.tiers.helpers import (
    ROUGE,
    VIB,
    at,
    beauty_insider,
    early_this_year,
    last_year,
    member,
    order,
    post_event,
)


def tiers(client, admin):
    return client.get("/v1/tiers", headers=admin).get_json()["items"]


def test_crud_round_trip_is_audited(client, admin, session):
    created = client.post(
        "/v1/tiers",
        json={"name": "VIB", "threshold": VIB, "multiplier": "1.25", "perks": ["Gift"]},
        headers=admin,
    )
    assert created.status_code == 201
    tier = created.get_json()
    assert {k: tier[k] for k in ("name", "threshold", "multiplier", "perks")} == {
        "name": "VIB",
        "threshold": VIB,
        "multiplier": "1.25",
        "perks": ["Gift"],
    }
    assert [t["name"] for t in tiers(client, admin)] == ["Member", "VIB"]
    patched = client.patch(f"/v1/tiers/{tier['id']}", json={"multiplier": "1.3"}, headers=admin)
    assert patched.status_code == 200 and patched.get_json()["multiplier"] == "1.3"
    assert client.get(f"/v1/tiers/{tier['id']}", headers=admin).get_json()["multiplier"] == "1.3"
    assert client.delete(f"/v1/tiers/{tier['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/tiers/{tier['id']}", headers=admin).status_code == 404
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.object_type == "tier").order_by(AuditLog.id)
    ).all()
    assert actions == ["tier.create", "tier.update", "tier.delete"]


def test_bad_tier_configs_get_clear_errors_and_change_nothing(client, admin):
    beauty_insider(client, admin)
    before = tiers(client, admin)
    second_zero = client.post(
        "/v1/tiers", json={"name": "Free", "threshold": 0, "multiplier": "1"}, headers=admin
    )
    assert second_zero.status_code == 409
    assert "exactly one tier has threshold 0" in second_zero.get_json()["detail"]
    negative = client.post(
        "/v1/tiers", json={"name": "Gold", "threshold": 5000, "multiplier": "-1"}, headers=admin
    )
    assert negative.status_code == 422
    assert negative.get_json()["errors"]["multiplier"] == ["Must be > 0."]
    zero = client.post(
        "/v1/tiers", json={"name": "Gold", "threshold": 5000, "multiplier": "0"}, headers=admin
    )
    assert zero.status_code == 422
    as_number = client.post(
        "/v1/tiers", json={"name": "Gold", "threshold": 5000, "multiplier": 1.5}, headers=admin
    )
    assert as_number.status_code == 422 and "multiplier" in as_number.get_json()["errors"]
    below_zero = client.post(
        "/v1/tiers", json={"name": "Gold", "threshold": -1, "multiplier": "1"}, headers=admin
    )
    assert below_zero.status_code == 422 and "threshold" in below_zero.get_json()["errors"]
    duplicate = client.post(
        "/v1/tiers", json={"name": "vib", "threshold": 5000, "multiplier": "1"}, headers=admin
    )
    assert duplicate.status_code == 409
    assert duplicate.get_json()["type"] == "conflict"
    assert "'VIB' already exists" in duplicate.get_json()["detail"]
    same_threshold = client.post(
        "/v1/tiers", json={"name": "Gold", "threshold": VIB, "multiplier": "1"}, headers=admin
    )
    assert same_threshold.status_code == 409
    assert tiers(client, admin) == before


def test_the_base_tier_can_not_be_deleted_or_moved(client, admin):
    beauty_insider(client, admin)
    base, vib, _rouge = tiers(client, admin)
    assert client.delete(f"/v1/tiers/{base['id']}", headers=admin).status_code == 409
    moved = client.patch(f"/v1/tiers/{base['id']}", json={"threshold": 100}, headers=admin)
    assert moved.status_code == 409
    to_zero = client.patch(f"/v1/tiers/{vib['id']}", json={"threshold": 0}, headers=admin)
    assert to_zero.status_code == 409
    renamed = client.patch(f"/v1/tiers/{base['id']}", json={"name": "Insider"}, headers=admin)
    assert renamed.status_code == 200
    taken = client.patch(f"/v1/tiers/{vib['id']}", json={"name": "Rouge"}, headers=admin)
    assert taken.status_code == 409
    assert [t["name"] for t in tiers(client, admin)] == ["Insider", "VIB", "Rouge"]


def test_threshold_changes_and_deletes_move_members_and_record_it(
    client, admin, storefront, session
):
    beauty_insider(client, admin)
    post_event(client, storefront, order(40_000, early_this_year(1), customer_id="a"))
    post_event(client, storefront, order(120_000, early_this_year(2), customer_id="b"))
    _base, vib, rouge = tiers(client, admin)
    # Raising VIB to 450.00 drops "a" back to Member at once.
    assert (
        client.patch(
            f"/v1/tiers/{vib['id']}", json={"threshold": 45_000}, headers=admin
        ).status_code
        == 200
    )
    assert member(client, storefront, "a")["tier"]["name"] == "Member"
    # Deleting Rouge moves "b" to the best remaining tier.
    assert client.delete(f"/v1/tiers/{rouge['id']}", headers=admin).status_code == 204
    assert member(client, storefront, "b")["tier"]["name"] == "VIB"
    reasons = session.execute(
        select(TierChange.from_tier, TierChange.to_tier, TierChange.reason)
        .where(TierChange.reason == "tier_config")
        .order_by(TierChange.id)
    ).all()
    assert reasons == [("VIB", "Member", "tier_config"), ("Rouge", "VIB", "tier_config")]


def test_preview_counts_moves_and_changes_nothing(client, admin, storefront, session):
    beauty_insider(client, admin)
    y = last_year()
    post_event(client, storefront, order(40_000, at(y, 5), customer_id="vib_last_year"))
    post_event(client, storefront, order(36_000, early_this_year(1), customer_id="vib_now"))
    post_event(client, storefront, order(150_000, early_this_year(2), customer_id="rouge"))
    post_event(client, storefront, order(1_000, early_this_year(3), customer_id="member"))
    snapshot = session.execute(select(Member.id, Member.tier_id).order_by(Member.id)).all()
    changes = session.scalar(select(func.count()).select_from(TierChange))
    proposal = [
        {"name": "Member", "threshold": 0, "multiplier": "1"},
        {"name": "VIB", "threshold": 38_000, "multiplier": "1.25"},
        {"name": "Rouge", "threshold": ROUGE, "multiplier": "1.5"},
        {"name": "Noir", "threshold": 140_000, "multiplier": "2"},
    ]
    response = client.post("/v1/tiers/preview", json={"tiers": proposal}, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "moves": [
            {"from": "Rouge", "to": "Noir", "members": 1},
            {"from": "VIB", "to": "Member", "members": 1},
        ]
    }
    assert session.execute(select(Member.id, Member.tier_id).order_by(Member.id)).all() == snapshot
    assert session.scalar(select(func.count()).select_from(TierChange)) == changes
    assert session.scalar(select(func.count()).select_from(Tier)) == 3


def test_preview_refuses_invalid_tier_lists(client, admin):
    two_zeros = [
        {"name": "A", "threshold": 0, "multiplier": "1"},
        {"name": "B", "threshold": 0, "multiplier": "1"},
    ]
    response = client.post("/v1/tiers/preview", json={"tiers": two_zeros}, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["errors"]["tiers"]["threshold"] == [
        "Exactly one tier must have threshold 0; got 2 (A, B)."
    ]
    no_base = [{"name": "A", "threshold": 10, "multiplier": "1"}]
    response = client.post("/v1/tiers/preview", json={"tiers": no_base}, headers=admin)
    assert response.status_code == 422
    dupes = [
        {"name": "A", "threshold": 0, "multiplier": "1"},
        {"name": "a", "threshold": 5, "multiplier": "1"},
    ]
    response = client.post("/v1/tiers/preview", json={"tiers": dupes}, headers=admin)
    assert response.get_json()["errors"]["tiers"]["name"] == ["Tier names must be unique: A, a."]
    negative = [{"name": "A", "threshold": 0, "multiplier": "-2"}]
    response = client.post("/v1/tiers/preview", json={"tiers": negative}, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["errors"]["tiers"]["0"]["multiplier"] == ["Must be > 0."]
