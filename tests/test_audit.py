"""Audit rows: written by the service that makes each change, never by a route, so a change
made through the API or by calling the service (the command line, a console) is logged alike."""

import ast
from pathlib import Path

from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.hooks import hooks
from loyalty.members import service as members
from tests.giftcards.helpers import hold, issue
from tests.rewards.helpers import make_member, make_reward

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("loyalty", "referrals", "rewards", "connectors")


def rows(session, action: str) -> list[AuditLog]:
    return list(
        session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
    )


def one(session, action: str) -> AuditLog:
    [row] = rows(session, action)
    assert row.actor.startswith("api_key:")  # the caller of the request
    return row


def audit_lines(source: str) -> list[int]:
    """Lines of `source` that name `record_change` or `AuditLog`, or import `loyalty.audit`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str | None] = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module, *(alias.name for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        if {"record_change", "AuditLog", "loyalty.audit"} & set(names):
            found.append(node.lineno)
    return found


def test_no_route_writes_an_audit_row():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("routes.py"))
        for line in audit_lines(path.read_text())
    ]
    assert offenders == []


def test_the_route_check_finds_each_way_of_writing_an_audit_row():
    assert audit_lines("from loyalty.audit import record_change\n") == [1]
    assert audit_lines("import loyalty.audit\n") == [1]
    assert audit_lines("x = 1\naudit.record_change(s, 'a', 'b', 1, None, None)\n") == [2]
    assert audit_lines("s.add(AuditLog(actor='a'))\n") == [1]
    assert audit_lines("record = 1\n") == []


def test_member_adjustment_and_erasure_are_audited(client, admin, session):
    make_member(client, admin, "c_aud")
    response = client.post(
        "/v1/members/c_aud/adjustments", json={"points": 40, "reason": "goodwill"}, headers=admin
    )
    assert response.status_code == 201
    adjusted = one(session, "member.adjust")
    assert adjusted.after == {
        "points": 40, "reason": "goodwill", "entry_id": response.get_json()["id"]
    }  # fmt: skip
    member_id = adjusted.object_id
    assert client.delete("/v1/members/c_aud", headers=admin).status_code == 204
    erased = one(session, "member.erase")
    assert (erased.object_type, erased.object_id) == ("member", member_id)
    assert (erased.before, erased.after) == (None, None)


def test_erasure_called_outside_a_request_is_audited_by_its_caller(client, admin, session):
    """The service writes the row: a caller without a request (the command line) gets it too,
    under the actor it names or "cli"."""
    make_member(client, admin, "c_cli")
    make_member(client, admin, "c_named")
    members.erase(session, hooks(), members.get_member(session, "c_cli", lock=True))
    named = members.get_member(session, "c_named", lock=True)
    members.erase(session, hooks(), named, actor="shopify:webhook")
    assert [row.actor for row in rows(session, "member.erase")] == ["cli", "shopify:webhook"]


def test_reward_crud_and_settings_are_audited(client, admin, session):
    reward = make_reward(client, admin, name="Tote")
    created = one(session, "reward.create")
    assert (created.object_id, created.before) == (str(reward["id"]), None)
    assert created.after == reward
    patched = client.patch(f"/v1/rewards/{reward['id']}", json={"name": "Bag"}, headers=admin)
    assert patched.status_code == 200
    updated = one(session, "reward.update")
    assert (updated.before["name"], updated.after) == ("Tote", patched.get_json())
    assert client.delete(f"/v1/rewards/{reward['id']}", headers=admin).status_code == 204
    deleted = one(session, "reward.delete")
    assert (deleted.before["name"], deleted.after) == ("Bag", None)

    before = client.get("/v1/reward-settings", headers=admin).get_json()
    changed = not before["expired_codes_return_points"]
    response = client.put(
        "/v1/reward-settings", json={"expired_codes_return_points": changed}, headers=admin
    )
    assert response.status_code == 200
    settings = one(session, "reward_settings.update")
    assert (settings.before, settings.after) == (before, response.get_json())


def test_gift_card_changes_are_audited(client, admin, storefront, session):
    card = issue(client, admin, amount=5000)
    issued = one(session, "gift_card.issue")
    assert issued.object_id == str(card["id"])
    assert issued.after == {k: v for k, v in card.items() if k != "code"}  # never the code
    held = hold(client, storefront, card["code"], 2000, order_id="o_aud")
    assert held.status_code == 201
    captured = client.post(
        f"/v1/gift-card-holds/{held.get_json()['id']}/capture", json={}, headers=storefront
    )
    assert captured.status_code == 200
    refunded = client.post(
        f"/v1/gift-cards/{card['id']}/refunds",
        json={"amount": 500, "order_id": "o_aud"},
        headers=admin,
    )
    assert refunded.status_code == 201
    assert one(session, "gift_card.refund").after == {
        "amount": 500, "order_id": "o_aud", "balance": refunded.get_json()["balance"]
    }  # fmt: skip
    adjusted = client.post(
        f"/v1/gift-cards/{card['id']}/adjustments",
        json={"amount": -100, "reason": "typo"},
        headers=admin,
    )
    assert adjusted.status_code == 201
    assert one(session, "gift_card.adjust").after == {
        "amount": -100, "reason": "typo", "balance": adjusted.get_json()["balance"]
    }  # fmt: skip
    disabled = client.post(f"/v1/gift-cards/{card['id']}/disable", json={}, headers=admin)
    assert disabled.status_code == 200
    assert one(session, "gift_card.disable").after == disabled.get_json()


def test_a_refused_change_leaves_no_audit_row(client, admin, session):
    response = client.patch("/v1/rewards/999999", json={"name": "x"}, headers=admin)
    assert response.status_code == 404
    assert rows(session, "reward.update") == []
