"""Members in the console: search, paging, the member page, adjustments through the API's
service (and its refusal), code cancel, erasure with a typed confirmation, roles."""

import re
from decimal import Decimal

from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.hooks import hooks
from loyalty.ledger import LedgerEntry
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.tiers import service as tiers
from loyalty.types import utcnow
from referrals import service as referrals
from rewards.catalog import service as catalog
from tests.console.conftest import assert_strict_csp, csrf_token, post_form
from tests.factories import next_id


def enrol(session, customer_id=None, email=None, points=0):
    customer_id = customer_id or next_id("cm")
    member, _ = members.enroll(session, hooks(), customer_id, email or f"{customer_id}@example.com")
    if points:
        members.adjust(session, member, points, "Starting balance", "cli")
    session.commit()
    return member


def test_search_by_customer_id_or_referral_code_opens_the_member(console_client, session):
    member = enrol(session, "cust-4711", "ana@example.com")
    client = console_client("support")
    answer = client.get("/console/members?q=cust-4711")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/members/cust-4711")
    code = referrals.code_for(session, member.id)
    session.commit()
    answer = client.get(f"/console/members?q={code.lower()}")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/members/cust-4711")


def test_search_by_email_matches_the_normalised_mailbox(console_client, session):
    enrol(session, "gm-1", "first.last@gmail.com")
    enrol(session, "gm-2", "other@example.com")
    client = console_client("support")
    page = client.get("/console/members?q=FirstLast%2Bshop@googlemail.com").get_data(as_text=True)
    assert "gm-1" in page and "gm-2" not in page
    nothing = client.get("/console/members?q=nobody@example.com").get_data(as_text=True)
    assert "No member has the customer id, email or referral code" in nothing


def test_htmx_search_answers_only_the_results(console_client, session):
    enrol(session, "hx-1")
    client = console_client("support")
    answer = client.get("/console/members?q=hx-1", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="results"') and "<html" not in html
    assert "hx-1" in html


def test_the_list_pages_newest_first(console_client, session, app):
    made = [enrol(session, f"page-{i:02d}", points=i + 1) for i in range(7)]
    client = console_client("support")
    from console.members import views as view

    original = view.PAGE_SIZE
    view.PAGE_SIZE = 3
    try:
        first = client.get("/console/members").get_data(as_text=True)
        ids = re.findall(r">(page-\d\d)</a>", first)
        assert ids == ["page-06", "page-05", "page-04"]
        cursor = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*rel="next"', first).group(1)
        second = client.get(cursor.replace("&amp;", "&")).get_data(as_text=True)
        assert re.findall(r">(page-\d\d)</a>", second) == ["page-03", "page-02", "page-01"]
        assert "First page" in second
    finally:
        view.PAGE_SIZE = original
    assert made[0].customer_id == "page-00"
    assert client.get("/console/members?cursor=not-a-cursor").status_code == 404


def test_the_member_page_shows_the_api_figures(console_client, session, admin):
    tiers.create_tier(session, {"name": "Gold", "threshold": 50_000, "multiplier": Decimal(2)})
    enrol(session, "show-1", "show@example.com", points=1200)
    client = console_client("support")
    answer = client.get("/console/members/show-1")
    assert answer.status_code == 200
    assert_strict_csp(answer)
    page = answer.get_data(as_text=True)
    api = client.get("/v1/members/show-1", headers=admin).get_json()
    assert f"{api['points']['available']:,}" in page
    assert api["tier"]["name"] in page
    assert api["referral"]["code"] in page
    assert "Starting balance" in page  # the ledger entry's explanation
    assert '<progress id="tier-progress" max="50000" value="0"' in page
    assert "$500.00 more to Gold" in page and api["next_tier"]["remaining_spend"] == 50_000
    assert client.get("/console/members/nobody-here").status_code == 404


def test_an_adjustment_moves_points_and_is_audited_as_the_admin(console_client, session):
    member = enrol(session, "adj-1")
    client = console_client("support")
    answer = post_form(
        client,
        "/console/members/adj-1/adjust",
        {"points": "250", "reason": "Parcel arrived late"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/members/adj-1")
    session.expire_all()
    assert session.get(Member, member.id).points_available == 250
    entry = session.scalar(select(LedgerEntry).where(LedgerEntry.member_id == member.id))
    assert entry.kind == "adjust" and entry.detail == {"reason": "Parcel arrived late"}
    assert entry.source_id == f"admin:{client.admin.id}"
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "member.adjust"))
    assert audit.actor == f"admin:{client.admin.id}"
    assert audit.object_id == str(member.id)
    assert audit.after == {"points": 250, "reason": "Parcel arrived late", "entry_id": entry.id}
    page = client.get("/console/members/adj-1").get_data(as_text=True)
    assert "+250 points: Parcel arrived late" in page  # the flash
    assert "Parcel arrived late" in page.split('id="activity"')[1]  # the ledger entry
    assert f"admin:{client.admin.id}" in page.split('id="changes"')[1]  # the audit row


def test_the_same_adjustment_form_sent_twice_moves_points_once(console_client, session):
    member = enrol(session, "twice-1")
    client = console_client("support")
    html = client.get("/console/members/twice-1/adjust").get_data(as_text=True)
    key = re.search(r'name="submission"[^>]*value="([^"]+)"', html)
    key = key or re.search(r'value="([^"]+)"[^>]*name="submission"', html)
    data = {"points": "100", "reason": "Once", "csrf_token": csrf_token(html),
            "submission": key.group(1)}  # fmt: skip
    assert client.post("/console/members/twice-1/adjust", data=data).status_code == 303
    again = client.post("/console/members/twice-1/adjust", data=data)
    assert again.status_code == 303
    session.expire_all()
    assert session.get(Member, member.id).points_available == 100
    count = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.member_id == member.id)
    assert session.scalar(count) == 1
    assert "That adjustment was already made." in client.get(again.headers["Location"]).get_data(
        as_text=True
    )


def test_taking_more_than_available_is_refused_with_the_api_explanation(
    console_client, session, admin
):
    member = enrol(session, "short-1", points=100)
    client = console_client("support")
    answer = post_form(
        client, "/console/members/short-1/adjust", {"points": "-500", "reason": "Too much"}
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    api = client.post(
        "/v1/members/short-1/adjustments", json={"points": -500, "reason": "x"}, headers=admin
    )
    assert api.status_code == 422 and api.get_json()["type"] == "insufficient-points"
    alert = re.search(r'<div class="form-errors" role="alert">(.*?)</div>', page, re.S).group(1)
    assert api.get_json()["detail"] in alert
    session.expire_all()
    assert session.get(Member, member.id).points_available == 100
    by_admin = select(AuditLog).where(
        AuditLog.action == "member.adjust", AuditLog.actor == f"admin:{client.admin.id}"
    )
    assert session.scalar(by_admin) is None


def test_the_api_schema_refuses_a_zero_adjustment_beside_the_field(console_client, session):
    enrol(session, "zero-1")
    client = console_client("support")
    answer = post_form(client, "/console/members/zero-1/adjust", {"points": "0", "reason": "x"})
    assert answer.status_code == 422
    assert "Must not be zero." in answer.get_data(as_text=True).split('id="points-error"')[1]
    no_reason = post_form(client, "/console/members/zero-1/adjust", {"points": "5", "reason": ""})
    assert no_reason.status_code == 422


def test_erasure_needs_the_customer_id_typed(console_client, session, admin):
    member = enrol(session, "erase-me", "erase@example.com")
    client = console_client("admin")
    wrong = post_form(client, "/console/members/erase-me/erase", {"confirm": "erase-you"})
    assert wrong.status_code == 422
    assert "nothing was erased" in wrong.get_data(as_text=True)
    session.expire_all()
    assert session.get(Member, member.id).customer_id == "erase-me"
    right = post_form(client, "/console/members/erase-me/erase", {"confirm": "erase-me"})
    assert right.status_code == 303
    session.expire_all()
    erased = session.get(Member, member.id)
    assert erased.customer_id is None and erased.email is None and erased.erased_at is not None
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "member.erase"))
    assert audit.actor == f"admin:{client.admin.id}" and audit.object_id == str(member.id)
    assert client.get("/v1/members/erase-me", headers=admin).status_code == 404
    listing = client.get("/console/members").get_data(as_text=True)
    data = {"confirm": "erase-me", "csrf_token": csrf_token(listing)}
    again = client.post("/console/members/erase-me/erase", data=data)
    assert again.status_code == 303
    assert "nothing to erase" in client.get("/console/members").get_data(as_text=True)


def test_support_cannot_erase(console_client, session):
    member = enrol(session, "keep-me")
    client = console_client("support")
    assert client.get("/console/members/keep-me/erase").status_code == 403
    token_page = "/console/members/keep-me/adjust"
    answer = post_form(client, "/console/members/keep-me/erase", {"confirm": "keep-me"},
                       page=token_page)  # fmt: skip
    assert answer.status_code == 403
    assert "Erase member" not in client.get("/console/members/keep-me").get_data(as_text=True)
    session.expire_all()
    assert session.get(Member, member.id).customer_id == "keep-me"


def test_an_analyst_cannot_see_members(console_client, session):
    enrol(session, "secret-1")
    client = console_client("analyst")
    assert client.get("/console/members").status_code == 403
    assert client.get("/console/members/secret-1").status_code == 403


def test_cancel_an_active_code_returns_its_points(console_client, session):
    member = enrol(session, "codes-1", points=1000)
    reward = catalog.create_reward(
        session, {"name": "Free shipping", "kind": "free_shipping", "points_cost": 300}
    )
    redemption = catalog.redeem(session, member, reward.id)
    session.commit()
    client = console_client("support")
    page = client.get("/console/members/codes-1").get_data(as_text=True)
    assert redemption.code in page and "Cancel and return points" in page
    path = f"/console/members/codes-1/codes/{redemption.id}/cancel"
    answer = post_form(client, path, {}, page="/console/members/codes-1")
    assert answer.status_code == 303
    session.expire_all()
    assert session.get(Member, member.id).points_available == 1000
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "reward_code.cancel"))
    assert audit.actor == f"admin:{client.admin.id}"
    again = post_form(client, path, {}, page="/console/members/codes-1")
    assert again.status_code == 409
    assert f"Code {redemption.code} was not canceled: This code is canceled" in (
        again.get_data(as_text=True)
    )


def activity_of(page: str) -> str:
    """The page's activity section alone (the admins' changes below it name the entries too)."""
    return page[page.index('id="activity"') :].split("</section>", 1)[0]


def test_the_activity_pages_back_through_the_ledger(console_client, session):
    member = enrol(session, "busy-1")
    for n in range(1, 6):
        members.adjust(session, member, n, f"Entry {n}", "cli")
    session.commit()
    client = console_client("support")
    from console.members import views as view

    original = view.ACTIVITY_PAGE_SIZE
    view.ACTIVITY_PAGE_SIZE = 3
    try:
        first = client.get("/console/members/busy-1").get_data(as_text=True)
        assert re.findall(r"Entry (\d)", activity_of(first)) == ["5", "4", "3"]
        older = re.search(r'href="([^"]*activity=[^"#]*)#activity"[^>]*rel="next"', first)
        second = client.get(older.group(1).replace("&amp;", "&"))
        assert re.findall(r"Entry (\d)", activity_of(second.get_data(as_text=True))) == ["2", "1"]
        fragment = client.get(
            older.group(1).replace("&amp;", "&"),
            headers={"HX-Request": "true", "HX-Target": "activity"},
        ).get_data(as_text=True)
        assert fragment.lstrip().startswith('<section class="card" id="activity"')
    finally:
        view.ACTIVITY_PAGE_SIZE = original
    assert client.get("/console/members/busy-1?activity=bogus").status_code == 404


def test_the_activity_explains_an_action_award_by_its_rule_and_action(
    console_client, client, session, admin, storefront
):
    enrol(session, "act-1", "act@example.com")
    rule = {"name": "Product reviews", "trigger": "action", "points": 50,
            "conditions": {"action_type": "review"}, "caps": {"per_month": 3}}  # fmt: skip
    assert client.post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
    review = {"id": "rv-1", "type": "review", "occurred_at": utcnow().isoformat()}
    answer = client.post("/v1/members/act-1/actions", json=review, headers=storefront)
    assert answer.status_code == 200, answer.get_json()
    page = console_client("support").get("/console/members/act-1").get_data(as_text=True)
    assert "Review (action rv-1): 50 points — rule “Product reviews”" in page
