"""Referral review in the console: the queue with the evidence of each rule, a referral's
page, approve and reject through the API's services (audited as the admin, applied once),
the lists by status, the program's settings, and who may do what."""

import re

from sqlalchemy import select

from loyalty.audit import AuditLog
from tests.console.conftest import csrf_token, post_form
from tests.referrals.helpers import claim, code_of, enroll, order, points

SUBMISSION = re.compile(
    r'name="submission"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="submission"'
)


def held(
    client, admin, storefront, friend="bea@example.com", *, ip="203.0.113.5", with_order=False
):
    """A claim from the IP address Ana orders from: held for review (`same_ip_as_referrer`)."""
    if client.get("/v1/members/ana", headers=admin).status_code == 404:
        enroll(client, admin, "ana", "ana@example.com", name="Ana Lopez")
        order(client, storefront, "ana", email="ana@example.com", days_ago=20, ip="203.0.113.5",
              order_id="ord-ana-1")  # fmt: skip
    response = claim(client, storefront, code_of(client, storefront, "ana"), friend, ip=ip)
    body = response.get_json()
    assert body["status"] == "review", body
    if with_order:
        customer = friend.split("@")[0]
        order(client, storefront, customer, email=friend, days_ago=1)
    return body["referral_id"]


def submission_key(html: str, action: str) -> str:
    form = html[html.index(f'action="{action}"') :]
    found = SUBMISSION.search(form)
    return found.group(1) or found.group(2)


def test_the_queue_lists_held_referrals_oldest_first_with_why(console_client, client, admin,
                                                              storefront):  # fmt: skip
    first = held(client, admin, storefront, "bea@example.com")
    second = held(client, admin, storefront, "cleo@example.com")
    page = console_client("support").get("/console/referrals")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index(f"Referral {first}<") < html.index(f"Referral {second}<")
    assert "Same IP address as the referrer" in html
    assert "203.0.113.5" in html and "ord-ana-1" in html  # the referrer's order from that IP
    assert "1 other referral from this address" in html
    assert 'href="/console/members/ana"' in html
    assert "bea@example.com" in html and "cleo@example.com" in html


def test_the_queue_pages(console_client, client, admin, storefront, monkeypatch):
    from console.referrals import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    ids = [held(client, admin, storefront, f"f{i}@example.com") for i in range(3)]
    console = console_client("support")
    html = console.get("/console/referrals").get_data(as_text=True)
    assert f"Referral {ids[0]}<" in html and f"Referral {ids[1]}<" in html
    assert f"Referral {ids[2]}<" not in html
    next_url = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    rest = console.get(next_url).get_data(as_text=True)
    assert f"Referral {ids[2]}<" in rest and f"Referral {ids[0]}<" not in rest
    assert console.get("/console/referrals?cursor=nonsense").status_code == 404
    assert console.get("/console/referrals?status=lost").status_code == 404


def test_a_lookalike_email_shows_what_it_reads_as(console_client, client, admin, storefront):
    held(client, admin, storefront)
    referral_id = held(client, admin, storefront, "\u0430na@example.com", ip="198.51.100.7")
    html = console_client("support").get(f"/console/referrals/{referral_id}").get_data(as_text=True)
    assert "Email looks like another address" in html
    assert "reads as the referrer&#39;s own address, ana@example.com" in html
    assert "Cyrillic Small Letter A" in html
    # Wherever the friend's email is shown, the character that passes for "a" is marked.
    mark = '<mark class="lookalike" title="Cyrillic Small Letter A, not the Latin a">\u0430</mark>'
    assert f"{mark}na@example.com" in html
    assert f"{mark}na@example.com reads as the referrer&#39;s own address" in html
    queue = console_client("support").get("/console/referrals").get_data(as_text=True)
    assert f"{mark}na@example.com" in queue
    assert "Reads as the referrer's own address" in queue


def test_a_referral_without_an_ip_says_so(console_client, client, admin, storefront):
    held(client, admin, storefront)
    referral_id = held(client, admin, storefront, "dan@example.com", ip=None)
    html = console_client("support").get(f"/console/referrals/{referral_id}").get_data(as_text=True)
    assert "No IP address" in html and "per-address limit" in html


def test_approving_a_held_claim_gives_the_friend_their_code(console_client, client, admin,
                                                            storefront, session):  # fmt: skip
    referral_id = held(client, admin, storefront)
    console = console_client("support")
    page = f"/console/referrals/{referral_id}"
    answer = post_form(console, f"{page}/approve", {"note": "Her cousin"}, page=page)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    html = console.get(page).get_data(as_text=True)
    body = client.get(f"/v1/referrals/{referral_id}", headers=admin).get_json()
    assert (body["status"], body["note"]) == ("claimed", "Her cousin")
    assert body["decided_by"] == f"admin:{console.admin.id}"
    assert f"The friend&#39;s reward code {body['friend_reward']['code']} was issued" in html
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "referral.approve")).one()
    assert audit.actor == f"admin:{console.admin.id}"
    assert (audit.before["status"], audit.after["status"]) == ("review", "claimed")
    assert "Approve referral" not in html  # decided: no more buttons


def test_approving_a_held_order_issues_the_referrers_reward(console_client, client, admin,
                                                            storefront):  # fmt: skip
    referral_id = held(client, admin, storefront, with_order=True)
    pending = points(client, storefront, "ana")["pending"]
    console = console_client("admin")
    page = f"/console/referrals/{referral_id}"
    answer = post_form(console, f"{page}/approve", {"note": ""}, page=page)
    assert answer.status_code == 303
    assert points(client, storefront, "ana")["pending"] == pending + 500
    html = console.get(page).get_data(as_text=True)
    assert "The referrer&#39;s reward was issued: 500 points, pending until" in html
    assert re.search(r'id="referrer-reward">500 points\s*· <strong>pending</strong>', html)
    activity = client.get("/v1/members/ana/activity", headers=admin).get_json()["items"]
    assert activity[0]["kind"] == "referral" and activity[0]["points"] == 500


def test_rejecting_needs_a_reason(console_client, client, admin, storefront, session):
    referral_id = held(client, admin, storefront)
    console = console_client("support")
    page = f"/console/referrals/{referral_id}"
    refused = post_form(console, f"{page}/reject", {"reason": "  "}, page=page)
    assert refused.status_code == 422
    assert "Say why" in refused.get_data(as_text=True)
    assert (
        client.get(f"/v1/referrals/{referral_id}", headers=admin).get_json()["status"] == "review"
    )
    answer = post_form(console, f"{page}/reject", {"reason": "Same household"}, page=page)
    assert answer.status_code == 303
    body = client.get(f"/v1/referrals/{referral_id}", headers=admin).get_json()
    assert (body["status"], body["reason"], body["note"]) == (
        "rejected", "rejected_by_admin", "Same household",
    )  # fmt: skip
    assert body["friend_reward"] is None
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "referral.reject")).one()
    assert audit.actor == f"admin:{console.admin.id}"
    listed = console.get("/console/referrals?status=rejected").get_data(as_text=True)
    assert f"Referral {referral_id}<" in listed and "Rejected by an admin" in listed
    assert f"Referral {referral_id}<" not in console.get("/console/referrals").get_data(
        as_text=True
    )


def test_a_decision_sent_twice_is_applied_once(console_client, client, admin, storefront,
                                               session):  # fmt: skip
    referral_id = held(client, admin, storefront, with_order=True)
    console = console_client("support")
    page = f"/console/referrals/{referral_id}"
    html = console.get(page).get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(html),
        "submission": submission_key(html, f"{page}/approve"),
        "note": "ok",
    }
    first = console.post(f"{page}/approve", data=data)
    again = console.post(f"{page}/approve", data=data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert "already made" in console.get(page).get_data(as_text=True)
    assert (
        len(session.scalars(select(AuditLog).where(AuditLog.action == "referral.approve")).all())
        == 1
    )
    # Another form (a new key) on a referral decided meanwhile gets the API's refusal.
    late = post_form(console, f"{page}/reject", {"reason": "late"}, page="/console/referrals")
    assert late.status_code == 409
    assert "not in review" in late.get_data(as_text=True)


def test_lists_by_status(console_client, client, admin, storefront):
    referral_id = held(client, admin, storefront)
    client.post(f"/v1/referrals/{referral_id}/approve", json={}, headers=admin)
    console = console_client("support")
    claimed = console.get("/console/referrals?status=claimed").get_data(as_text=True)
    assert f"Referral {referral_id}<" in claimed
    for status in ("review", "converted", "rewarded", "rejected"):
        html = console.get(f"/console/referrals?status={status}").get_data(as_text=True)
        assert f"Referral {referral_id}<" not in html, status


SETTINGS = {
    "enabled": "y",
    "landing_url": "https://shop.example.com/welcome",
    "friend_kind": "percent_off",
    "friend_amount": "",
    "friend_percent": "15",
    "friend_sku": "",
    "friend_min_order": "25.00",
    "friend_valid_days": "60",
    "referrer_kind": "points",
    "referrer_points": "750",
    "referrer_reward_id": "",
    "min_order_amount": "20",
    "reward_hold_days": "21",
    "attribution_days": "14",
    "max_conversions_per_referrer_30d": "",
    "max_claims_per_ip_7d": "3",
    "missing_ip": "refuse",
}


def test_an_admin_changes_the_settings_as_the_api_would(console_client, client, admin, session):
    console = console_client("admin")
    answer = post_form(console, "/console/referrals/settings", SETTINGS)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert client.get("/v1/referral-program", headers=admin).get_json() == {
        "enabled": True,
        "landing_url": "https://shop.example.com/welcome",
        "friend_reward": {"kind": "percent_off", "percent": 15, "min_order": 2500,
                          "valid_days": 60},
        "referrer_reward": {"points": 750},
        "max_conversions_per_referrer_30d": None,
        "max_claims_per_ip_7d": 3,
        "attribution_days": 14,
        "min_order_amount": 2000,
        "reward_hold_days": 21,
        "missing_ip": "refuse",
    }  # fmt: skip
    audit = session.scalars(
        select(AuditLog).where(AuditLog.action == "referral_program.update")
    ).one()
    assert audit.actor == f"admin:{console.admin.id}"
    html = console.get("/console/referrals/settings").get_data(as_text=True)
    assert "Referral program settings saved." in html
    assert 'value="25.00"' in html and 'value="750"' in html


def test_what_the_api_refuses_the_settings_page_refuses(console_client, client, admin):
    before = client.get("/v1/referral-program", headers=admin).get_json()
    console = console_client("owner")
    cases = [
        ({"friend_percent": "101"}, "friend_percent"),
        ({"referrer_points": ""}, "referrer_points"),
        ({"referrer_kind": "reward", "referrer_reward_id": "999"}, "referrer_reward_id"),
        ({"min_order_amount": "0"}, "min_order_amount"),
        ({"min_order_amount": "1.234"}, "min_order_amount"),
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
    ]
    for change, field in cases:
        answer = post_form(console, "/console/referrals/settings", {**SETTINGS, **change})
        assert answer.status_code == 422, change
        assert f'id="{field}-error"' in answer.get_data(as_text=True), change
    assert client.get("/v1/referral-program", headers=admin).get_json() == before


def test_support_reviews_but_cannot_touch_the_settings(console_client, client, admin, storefront):
    referral_id = held(client, admin, storefront)
    support = console_client("support")
    assert support.get(f"/console/referrals/{referral_id}").status_code == 200
    assert support.get("/console/referrals/settings").status_code == 403
    answer = post_form(support, "/console/referrals/settings", SETTINGS, page="/console/referrals")
    assert answer.status_code == 403
    assert "Referral program settings" not in support.get("/console/referrals").get_data(
        as_text=True
    )
    assert client.get("/v1/referral-program", headers=admin).get_json()["max_claims_per_ip_7d"] == 5


def test_an_analyst_reads_the_settings_but_not_the_queue(console_client):
    analyst = console_client("analyst")
    assert analyst.get("/console/referrals").status_code == 403
    html = analyst.get("/console/referrals/settings").get_data(as_text=True)
    assert "can read these settings but not change them" in html
    assert "Save referral settings" not in html
    token_page = "/console/referrals/settings"
    assert post_form(analyst, token_page, SETTINGS).status_code == 403


def test_a_referral_of_an_erased_referrer_still_shows(console_client, client, admin, storefront):
    referral_id = held(client, admin, storefront)
    assert client.delete("/v1/members/ana", headers=admin).status_code == 204
    console = console_client("support")
    answer = console.get(f"/console/referrals/{referral_id}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "erased" in html and "Approve referral" in html
    assert "erased" in console.get("/console/referrals").get_data(as_text=True)
