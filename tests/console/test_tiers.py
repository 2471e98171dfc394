"""Tiers in the console: the ladder, the preview that changes nothing, the confirmation that
applies through the API's services, refusals in the API's words, roles."""

import re

import pytest
from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.members.models import Member
from loyalty.tiers.models import Tier, TierChange
from tests.console.conftest import assert_strict_csp, csrf_token, post_form
from tests.tiers.helpers import ROUGE, beauty_insider, early_this_year, order, post_event

_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture
def ladder(client, admin, storefront):
    """Member (0), VIB ($350), Rouge ($1,000); members with known spend this year:
    two at $400 (VIB), one at $1,500 (Rouge), one at $10 (Member)."""
    beauty_insider(client, admin)
    for n, (customer_id, amount) in enumerate(
        (("vib_a", 40_000), ("vib_b", 40_000), ("rouge", 150_000), ("member", 1_000))
    ):
        post_event(client, storefront, order(amount, early_this_year(n + 1), customer_id))
    return {t["name"]: t for t in client.get("/v1/tiers", headers=admin).get_json()["items"]}


def tiers_of_members(session):
    session.expire_all()
    rows = session.execute(
        select(Member.customer_id, Tier.name).join(Tier, Tier.id == Member.tier_id)
    )
    return dict(rows.all())


def confirmation(html: str) -> dict:
    """The hidden fields of the preview's confirmation form."""
    return dict(_HIDDEN.findall(html.replace("&#34;", '"')))


def test_the_ladder_lists_each_tier_with_its_members(console_client, ladder):
    page = console_client("owner").get("/console/tiers").get_data(as_text=True)
    rows = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", page, re.S)
    assert [re.search(r'class="tier-name">([^< ]+)', r).group(1) for r in rows] == [
        "Member", "VIB", "Rouge",
    ]  # fmt: skip
    assert "$350" in rows[1] and "1.25×" in rows[1] and ">2</td>" in rows[1]
    assert "$1,000" in rows[2] and ">1</td>" in rows[2]
    assert "Add a tier" in page


def test_preview_changes_nothing_and_confirm_applies_it(console_client, ladder, session):
    client = console_client("owner")
    vib = ladder["VIB"]
    before = tiers_of_members(session)
    changes = session.scalar(select(func.count()).select_from(TierChange))
    values = {"threshold": "450", "multiplier": "1.3", "perks": "Birthday gift\nFree samples"}
    preview = post_form(
        client,
        f"/console/tiers/{vib['id']}/preview",
        values,
        page=f"/console/tiers/{vib['id']}/edit",
    )
    assert preview.status_code == 200, preview.get_data(as_text=True)
    html = preview.get_data(as_text=True)
    assert "Preview: who would move" in html
    move = re.search(r'<tr class="move">(.*?)</tr>', html, re.S).group(1)
    assert re.sub(r"<[^>]+>|\s+", " ", move).split() == ["VIB", "→", "to", "Member", "2", "members"]
    assert 'Unchanged</td><td class="num">2 members' in html
    assert "$450" in html and "$350" in html  # the new ladder beside the old
    # Nothing changed yet.
    assert tiers_of_members(session) == before
    assert session.scalar(select(func.count()).select_from(TierChange)) == changes
    assert session.get(Tier, vib["id"]).threshold == 35_000

    hidden = confirmation(html)
    assert hidden["threshold"] == "450" and hidden["multiplier"] == "1.3"
    applied = client.post(f"/console/tiers/{vib['id']}", data=hidden)
    assert applied.status_code == 303, applied.get_data(as_text=True)
    tier = session.get(Tier, vib["id"])
    session.refresh(tier)
    assert (tier.threshold, str(tier.multiplier.normalize())) == (45_000, "1.3")
    assert tier.perks == ["Birthday gift", "Free samples"]
    assert tiers_of_members(session) == {**before, "vib_a": "Member", "vib_b": "Member"}
    audit = session.scalar(
        select(AuditLog).where(AuditLog.action == "tier.update").order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{client.admin.id}" and audit.after["threshold"] == 45_000
    page = client.get("/console/tiers").get_data(as_text=True)
    assert "VIB saved. 2 members moved to a new tier." in page


def test_a_stale_confirmation_is_refused_with_the_new_preview(
    console_client, ladder, session, admin
):
    client = console_client("admin")
    vib = ladder["VIB"]
    html = post_form(
        client, f"/console/tiers/{vib['id']}/preview", {"threshold": "450", "multiplier": "1.25"},
        page="/console/tiers",
    ).get_data(as_text=True)  # fmt: skip
    hidden = confirmation(html)
    # Meanwhile someone else moves Rouge down to $300.
    moved = client.patch(f"/v1/tiers/{ladder['Rouge']['id']}", json={"threshold": 30_000},
                         headers=admin)  # fmt: skip
    assert moved.status_code == 200
    before = tiers_of_members(session)
    answer = client.post(f"/console/tiers/{vib['id']}", data=hidden)
    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    assert "The tiers changed after this preview was made, so nothing was applied." in page
    assert "$300" in page  # the fresh preview, on the ladder as it is now
    session.expire_all()
    assert session.get(Tier, vib["id"]).threshold == 35_000
    assert tiers_of_members(session) == before
    # Its own confirmation (the fresh fingerprint) then applies.
    assert client.post(f"/console/tiers/{vib['id']}", data=confirmation(page)).status_code == 303


def test_an_invalid_confirmation_is_refused_and_changes_nothing(console_client, ladder, session):
    client = console_client("owner")
    vib = ladder["VIB"]
    html = post_form(
        client, f"/console/tiers/{vib['id']}/preview", {"threshold": "450", "multiplier": "1.25"},
        page="/console/tiers",
    ).get_data(as_text=True)  # fmt: skip
    hidden = {**confirmation(html), "multiplier": "-1", "threshold": "12.345"}
    answer = client.post(f"/console/tiers/{vib['id']}", data=hidden)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "USD amounts have 2 decimal places." in page
    session.expire_all()
    assert session.get(Tier, vib["id"]).threshold == 35_000
    hidden = {**confirmation(html), "multiplier": "-1"}
    answer = client.post(f"/console/tiers/{vib['id']}", data=hidden)
    assert answer.status_code == 422 and "Must be &gt; 0." in answer.get_data(as_text=True)
    # A threshold another tier holds: the preview's own whole-list check, beside the field.
    answer = post_form(
        client, f"/console/tiers/{vib['id']}/preview",
        {"threshold": f"{ROUGE // 100}", "multiplier": "1.25"}, page="/console/tiers",
    )  # fmt: skip
    assert answer.status_code == 422
    assert 'id="threshold-error">Two tiers can&#39;t share a threshold.' in answer.get_data(
        as_text=True
    )
    session.expire_all()
    assert session.get(Tier, vib["id"]).threshold == 35_000


def test_adding_a_tier_previews_then_applies(console_client, ladder, session):
    client = console_client("owner")
    values = {"name": "Noir", "threshold": "1400", "multiplier": "2", "perks": "Private events"}
    html = post_form(client, "/console/tiers/new/preview", values, page="/console/tiers/new")
    page = html.get_data(as_text=True)
    assert html.status_code == 200
    assert re.sub(r"<[^>]+>|\s+", " ", re.search(r'<tr class="move">(.*?)</tr>', page, re.S)
                  .group(1)).split() == ["Rouge", "→", "to", "Noir", "1", "member"]  # fmt: skip
    assert session.scalar(select(Tier).where(Tier.name == "Noir")) is None
    assert client.post("/console/tiers", data=confirmation(page)).status_code == 303
    assert tiers_of_members(session)["rouge"] == "Noir"
    # Back keeps the values in the form.
    back = client.post("/console/tiers/new", data={**values, "csrf_token": csrf_token(page)})
    assert back.status_code == 200 and 'value="1400"' in back.get_data(as_text=True)


def test_removing_a_tier_previews_then_applies(console_client, ladder, session):
    client = console_client("owner")
    rouge = ladder["Rouge"]
    preview = client.get(f"/console/tiers/{rouge['id']}/remove")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "removing <strong>Rouge</strong>" in page
    assert "Rouge</td>" in page and "VIB</td>" in page
    assert session.get(Tier, rouge["id"]) is not None
    answer = client.post(f"/console/tiers/{rouge['id']}/remove", data=confirmation(page))
    assert answer.status_code == 303
    session.expire_all()
    assert session.get(Tier, rouge["id"]) is None
    assert tiers_of_members(session)["rouge"] == "VIB"


def test_the_base_tier_cannot_be_removed_or_moved(console_client, ladder, session):
    client = console_client("owner")
    base = ladder["Member"]
    page = client.get("/console/tiers").get_data(as_text=True)
    assert f"/console/tiers/{base['id']}/remove" not in page
    answer = client.get(f"/console/tiers/{base['id']}/remove")
    assert answer.status_code == 409
    assert "The base tier (threshold 0) can&#39;t be deleted." in answer.get_data(as_text=True)
    answer = client.post(f"/console/tiers/{base['id']}/remove",
                         data={"csrf_token": csrf_token(page), "ladder": "x"})  # fmt: skip
    assert answer.status_code in (409,)
    edit = client.get(f"/console/tiers/{base['id']}/edit").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="threshold"[^>]*readonly', edit)
    answer = post_form(
        client, f"/console/tiers/{base['id']}/preview", {"threshold": "5", "multiplier": "1"},
        page="/console/tiers",
    )  # fmt: skip
    assert answer.status_code == 409
    assert "The base tier must keep threshold 0" in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(Tier, base["id"]).threshold == 0


def test_support_may_not_open_tiers_and_an_analyst_only_reads(console_client, ladder, session):
    support = console_client("support")
    vib = ladder["VIB"]
    assert support.get("/console/tiers").status_code == 403
    data = {"threshold": "1", "multiplier": "1", "ladder": "x"}
    token = csrf_token(support.get("/console/members").get_data(as_text=True))
    assert support.post(f"/console/tiers/{vib['id']}",
                        data={**data, "csrf_token": token}).status_code == 403  # fmt: skip
    analyst = console_client("analyst")
    page = analyst.get("/console/tiers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "VIB" in html and "Add a tier" not in html and "/edit" not in html
    assert "can read the tiers but not change them" in html
    assert analyst.get(f"/console/tiers/{vib['id']}/edit").status_code == 403
    token = csrf_token(html)
    for path in (f"/console/tiers/{vib['id']}", f"/console/tiers/{vib['id']}/preview",
                 "/console/tiers", f"/console/tiers/{vib['id']}/remove"):  # fmt: skip
        assert analyst.post(path, data={**data, "csrf_token": token}).status_code == 403
    session.expire_all()
    assert session.get(Tier, vib["id"]).threshold == 35_000


def test_a_tier_that_rules_use_is_refused_with_the_apis_explanation(
    console_client, ladder, client, admin, session
):
    rule = client.post(
        "/v1/earning-rules",
        json={"name": "Rouge days", "trigger": "order", "multiplier": "2",
              "conditions": {"tiers": ["Rouge"]}},
        headers=admin,
    ).get_json()  # fmt: skip
    console = console_client("owner")
    rouge = ladder["Rouge"]
    preview = console.get(f"/console/tiers/{rouge['id']}/remove")
    assert preview.status_code == 200
    answer = console.post(
        f"/console/tiers/{rouge['id']}/remove", data=confirmation(preview.get_data(as_text=True))
    )
    assert answer.status_code == 409
    api = client.delete(f"/v1/tiers/{rouge['id']}", headers=admin).get_json()
    assert api["detail"].replace("'", "&#39;") in answer.get_data(as_text=True)
    assert str(rule["id"]) in api["detail"]
    session.expire_all()
    assert session.get(Tier, rouge["id"]) is not None
    assert tiers_of_members(session)["rouge"] == "Rouge"


def test_pages_with_arguments_have_the_strict_csp(console_client, ladder):
    client = console_client("owner")
    vib = ladder["VIB"]
    assert_strict_csp(client.get(f"/console/tiers/{vib['id']}/edit"))
    assert_strict_csp(client.get(f"/console/tiers/{vib['id']}/remove"))
    preview = post_form(
        client, f"/console/tiers/{vib['id']}/preview", {"threshold": "450", "multiplier": "1.25"},
        page="/console/tiers",
    )  # fmt: skip
    assert_strict_csp(preview)


def test_with_htmx_the_preview_comes_as_the_page_part_it_replaces(console_client, ladder):
    client = console_client("owner")
    vib = ladder["VIB"]
    token = csrf_token(client.get("/console/tiers").get_data(as_text=True))
    answer = client.post(
        f"/console/tiers/{vib['id']}/preview",
        data={"threshold": "450", "multiplier": "1.25"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and html.lstrip().startswith('<div id="tier-step">')
    assert "Preview: who would move" in html and "<html" not in html
    refused = client.post(
        f"/console/tiers/{vib['id']}/preview",
        data={"threshold": "abc", "multiplier": "1.25"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )  # htmx swaps only 2xx answers: the refused form comes as one
    assert refused.status_code == 200
    assert "Enter an amount in USD" in refused.get_data(as_text=True)
