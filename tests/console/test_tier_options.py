"""The console's tier options: a tier's entry reward and birthday points in the form and its
preview, and the tier basis chosen with a preview of who would move."""

import re

from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.program.models import Program
from loyalty.tiers.models import Tier
from tests.console import test_tiers
from tests.console.conftest import post_form
from tests.console.test_tiers import confirmation, tiers_of_members
from tests.rewards.helpers import make_reward

ladder = test_tiers.ladder  # the fixture: Member, VIB ($350), Rouge ($1,000) and members


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_tier_form_sets_an_entry_reward_and_birthday_points(
    console_client, ladder, session, client, admin
):
    reward = make_reward(client, admin, name="VIB welcome")
    owner = console_client("owner")
    vib = ladder["VIB"]
    form = owner.get(f"/console/tiers/{vib['id']}/edit").get_data(as_text=True)
    assert '<label for="entry_reward_id">Entry reward</label>' in form
    assert f'<option value="{reward["id"]}">VIB welcome</option>' in form
    assert '<label for="birthday_points">Birthday points</label>' in form
    values = {"threshold": "350", "multiplier": "1.25", "entry_reward_id": str(reward["id"]),
              "birthday_points": "1,000"}  # fmt: skip
    preview = post_form(owner, f"/console/tiers/{vib['id']}/preview", values,
                        page=f"/console/tiers/{vib['id']}/edit")  # fmt: skip
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "No member would change tier" in html
    assert "Entry reward: VIB welcome" in html and "Birthday: 1,000 points" in html
    hidden = confirmation(html)
    assert (hidden["entry_reward_id"], hidden["birthday_points"]) == (str(reward["id"]), "1000")
    assert owner.post(f"/console/tiers/{vib['id']}", data=hidden).status_code == 303
    tier = session.get(Tier, vib["id"])
    session.refresh(tier)
    assert (tier.entry_reward_id, tier.birthday_points) == (reward["id"], 1_000)
    audit = session.scalar(
        select(AuditLog).where(AuditLog.action == "tier.update").order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{owner.admin.id}"
    assert (audit.after["entry_reward_id"], audit.after["birthday_points"]) == (
        reward["id"], 1_000,
    )  # fmt: skip
    page = text(owner.get("/console/tiers").get_data(as_text=True))
    assert "VIB welcome" in page and "1,000 points" in page
    # Cleared again: empty means the rules' points, "None" no entry reward.
    values = {"threshold": "350", "multiplier": "1.25", "entry_reward_id": "",
              "birthday_points": ""}  # fmt: skip
    html = post_form(owner, f"/console/tiers/{vib['id']}/preview", values,
                     page=f"/console/tiers/{vib['id']}/edit").get_data(as_text=True)  # fmt: skip
    assert "No entry reward" in html and "Birthday: the rule's points" in html
    assert owner.post(f"/console/tiers/{vib['id']}", data=confirmation(html)).status_code == 303
    session.refresh(tier)
    assert (tier.entry_reward_id, tier.birthday_points) == (None, None)


def test_bad_birthday_points_are_refused_beside_the_field(console_client, ladder):
    owner = console_client("owner")
    vib = ladder["VIB"]
    values = {"threshold": "350", "multiplier": "1.25", "birthday_points": "-5"}
    answer = post_form(owner, f"/console/tiers/{vib['id']}/preview", values,
                       page=f"/console/tiers/{vib['id']}/edit")  # fmt: skip
    assert answer.status_code == 422
    assert 'id="birthday_points-error"' in answer.get_data(as_text=True)


def test_the_basis_is_previewed_then_applied(console_client, ladder, session):
    owner = console_client("owner")
    page = owner.get("/console/tiers").get_data(as_text=True)
    assert "Tiers now count" in text(page) and "spend" in text(page)
    assert '<label for="tier_basis">Qualify members for tiers by</label>' in page
    before = tiers_of_members(session)
    # By paid orders (one each), nobody reaches VIB's 35,000 orders: the three above move.
    preview = post_form(owner, "/console/tiers/basis/preview", {
        "tier_basis": "orders",
        "ladder": re.search(r'name="ladder"[^>]*value="([^"]+)"', page).group(1),
        "basis_before": "spend",
    }, page="/console/tiers")  # fmt: skip
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    moves = [text(m).split() for m in re.findall(r'<tr class="move">(.*?)</tr>', html, re.S)]
    assert moves == [["Rouge", "→", "to", "Member", "1", "member"],
                     ["VIB", "→", "to", "Member", "2", "members"]]  # fmt: skip
    assert "35,000 orders" in html and "$350" in html  # thresholds now and after
    assert tiers_of_members(session) == before  # nothing changed yet
    hidden = confirmation(html)
    assert hidden["tier_basis"] == "orders"
    applied = owner.post("/console/tiers/basis", data=hidden)
    assert applied.status_code == 303, applied.get_data(as_text=True)
    assert set(tiers_of_members(session).values()) == {"Member"}
    assert session.get(Program, 1).tier_basis == "orders"
    page = text(owner.get("/console/tiers").get_data(as_text=True))
    assert "Tiers now count paid orders. 3 members moved to a new tier." in page
    assert "35,000 orders" in page
    audit = session.scalar(
        select(AuditLog).where(AuditLog.action == "program.update").order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{owner.admin.id}" and audit.after["tier_basis"] == "orders"
    settings = text(owner.get("/console/settings").get_data(as_text=True))
    assert "Tiers count paid orders in the period. Change it on the Tiers page" in settings
    # A member's page shows progress in orders.
    member = text(owner.get("/console/members/vib_a").get_data(as_text=True))
    assert "34,999 orders more to VIB" in member and "Qualifying orders 1 order" in member
    # The tier form now takes a count.
    form = owner.get(f"/console/tiers/{ladder['VIB']['id']}/edit").get_data(as_text=True)
    assert "Threshold (orders)" in form and 'value="35000"' in form
    values = {"threshold": "1", "multiplier": "1.25"}
    html = post_form(owner, f"/console/tiers/{ladder['VIB']['id']}/preview", values,
                     page="/console/tiers").get_data(as_text=True)  # fmt: skip
    assert "1 order" in html


def test_a_stale_basis_confirmation_is_refused_with_a_fresh_preview(
    console_client, ladder, session, client, admin
):
    owner = console_client("owner")
    page = owner.get("/console/tiers").get_data(as_text=True)
    html = post_form(owner, "/console/tiers/basis/preview", {
        "tier_basis": "orders",
        "ladder": re.search(r'name="ladder"[^>]*value="([^"]+)"', page).group(1),
        "basis_before": "spend",
    }, page="/console/tiers").get_data(as_text=True)  # fmt: skip
    # Meanwhile the basis changes through the API.
    assert (
        client.put("/v1/program", json={"tier_basis": "points"}, headers=admin).status_code == 200
    )
    moved = tiers_of_members(session)
    answer = owner.post("/console/tiers/basis", data=confirmation(html))
    assert answer.status_code == 409
    assert "changed after this preview was made, so nothing was applied" in answer.get_data(
        as_text=True
    )
    assert session.get(Program, 1).tier_basis == "points"
    assert tiers_of_members(session) == moved


def test_an_analyst_sees_the_basis_but_cannot_change_it(console_client, ladder):
    analyst = console_client("analyst")
    page = analyst.get("/console/tiers").get_data(as_text=True)
    assert "Tiers now count" in text(page)
    assert "basis/preview" not in page
    refused = analyst.post("/console/tiers/basis/preview", data={"tier_basis": "orders"})
    assert refused.status_code in (400, 403)
