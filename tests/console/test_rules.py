"""Earning rules in the console: list in plain words, create, edit, pause and resume through the
API's schemas and services; refusals in the API's words; roles."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.earning.models import EarningRule
from tests.console.conftest import csrf_token, post_form
from tests.tiers.helpers import beauty_insider

FORM = {
    "name": "Skincare month",
    "trigger": "order",
    "multiplier": "2",
    "points": "",
    "categories": "skincare, serums",
    "skus": "",
    "min_spend": "50",
    "tiers": ["VIB", "Rouge"],
    "starts_at": "2030-03-01T00:00",
    "ends_at": "2030-04-01T00:00",
    "active": "y",
}


def rules_count(session):
    return session.scalar(select(func.count()).select_from(EarningRule))


def test_create_a_rule_and_see_it_in_plain_words(console_client, client, admin, session):
    beauty_insider(client, admin)
    console = console_client("owner")
    answer = post_form(console, "/console/rules", FORM, page="/console/rules/new")
    assert answer.status_code == 303, answer.get_data(as_text=True)
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Skincare month"))
    api = client.get(f"/v1/earning-rules/{rule.id}", headers=admin).get_json()
    assert api["multiplier"] == "2" and api["points"] is None
    assert api["conditions"] == {
        "categories": ["skincare", "serums"],
        "min_spend": 5000,
        "tiers": ["VIB", "Rouge"],
    }
    assert api["starts_at"].startswith("2030-03-01T00:00:00") and api["active"] is True
    audit = session.scalar(
        select(AuditLog)
        .where(AuditLog.action == "earning_rule.create")
        .order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{console.admin.id}"
    page = console.get("/console/rules").get_data(as_text=True)
    assert "Earning rule “Skincare month” created." in page
    assert (
        "2× points on skincare and serums in orders of $50 or more for VIB and Rouge members"
        in page
    )
    assert "1–31 March 2030" in page and "Scheduled" in page
    edit = console.get(f"/console/rules/{rule.id}").get_data(as_text=True)
    assert (
        "2× points on skincare and serums in orders of $50 or more for VIB and Rouge members,"
        " 1–31 March 2030" in edit
    )
    assert 'value="2030-03-01T00:00"' in edit and 'value="skincare, serums"' in edit


def test_edit_a_rule(console_client, session):
    console = console_client("admin")
    post_form(console, "/console/rules", FORM | {"tiers": []}, page="/console/rules/new")
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Skincare month"))
    changed = FORM | {
        "tiers": [], "trigger": "first_order", "multiplier": "", "points": "100",
        "categories": "", "starts_at": "", "ends_at": "",
    }  # fmt: skip
    answer = post_form(console, f"/console/rules/{rule.id}", changed)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    session.refresh(rule)
    assert (rule.trigger, rule.multiplier, rule.points) == ("first_order", None, 100)
    assert rule.conditions == {"min_spend": 5000}
    assert rule.starts_at is None and rule.ends_at is None
    page = console.get("/console/rules").get_data(as_text=True)
    assert "100 bonus points on a first order of $50 or more" in page
    assert "Always" in page and "Active" in page


def test_pause_and_resume(console_client, session):
    console = console_client("owner")
    post_form(
        console, "/console/rules", FORM | {"tiers": [], "starts_at": ""}, page="/console/rules/new"
    )
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Skincare month"))
    assert rule.active is True
    answer = post_form(console, f"/console/rules/{rule.id}/pause", {}, page="/console/rules")
    assert answer.status_code == 303
    session.refresh(rule)
    assert rule.active is False
    page = console.get("/console/rules").get_data(as_text=True)
    assert "Earning rule “Skincare month” paused." in page and "Paused" in page
    assert f"/console/rules/{rule.id}/resume" in page
    answer = post_form(console, f"/console/rules/{rule.id}/resume",
                       {"next": f"/console/rules/{rule.id}"}, page="/console/rules")  # fmt: skip
    assert answer.status_code == 303 and answer.location.endswith(f"/console/rules/{rule.id}")
    session.refresh(rule)
    assert rule.active is True
    audits = session.scalars(
        select(AuditLog.after).where(AuditLog.action == "earning_rule.update").order_by(AuditLog.id)
    ).all()
    assert [a["active"] for a in audits] == [False, True]
    # Only back to the rules' own pages.
    answer = post_form(console, f"/console/rules/{rule.id}/pause",
                       {"next": "https://elsewhere.example/"}, page="/console/rules")  # fmt: skip
    assert answer.location.endswith("/console/rules")


def test_a_refused_rule_shows_the_apis_field_errors_and_changes_nothing(
    console_client, client, admin, session
):
    console = console_client("owner")
    before = rules_count(session)
    both = FORM | {"tiers": [], "points": "100"}
    answer = post_form(console, "/console/rules", both, page="/console/rules/new")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    api = client.post(
        "/v1/earning-rules",
        json={"name": "x", "trigger": "order", "multiplier": "2", "points": 100},
        headers=admin,
    ).get_json()
    message = api["errors"]["points"][0]
    assert f'id="points-error">{message.replace("`", "&#96;")}' in page or (
        f'id="points-error">{message}' in page
    )
    backwards = FORM | {"tiers": [], "ends_at": "2030-02-01T00:00"}
    page = post_form(console, "/console/rules", backwards, page="/console/rules/new").get_data(
        as_text=True
    )
    assert 'id="ends_at-error">Must be after starts_at.' in page
    unknown = FORM | {"tiers": ["Platinum"]}
    answer = post_form(console, "/console/rules", unknown, page="/console/rules/new")
    assert answer.status_code == 422 and "Unknown tiers: Platinum." in answer.get_data(as_text=True)
    schema = FORM | {"tiers": [], "multiplier": "1"}  # the schema's own rule: above 1
    page = post_form(console, "/console/rules", schema, page="/console/rules/new").get_data(
        as_text=True
    )
    assert 'id="multiplier-error">Must be &gt; 1.' in page
    signup = FORM | {"tiers": [], "trigger": "signup", "multiplier": "", "points": "200"}
    page = post_form(console, "/console/rules", signup, page="/console/rules/new").get_data(
        as_text=True
    )
    assert "A signup rule takes only a" in page
    assert rules_count(session) == before
    # Editing is refused the same way, and the rule stays as it was.
    post_form(console, "/console/rules", FORM | {"tiers": []}, page="/console/rules/new")
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Skincare month"))
    answer = post_form(console, f"/console/rules/{rule.id}", both | {"name": "Changed"})
    assert answer.status_code == 422
    session.refresh(rule)
    assert (rule.name, rule.multiplier, rule.points) == ("Skincare month", Decimal(2), None)


def test_support_gets_403_and_an_analyst_reads(console_client, client, admin, session):
    created = client.post(
        "/v1/earning-rules",
        json={"name": "Welcome", "trigger": "signup", "points": 200},
        headers=admin,
    ).get_json()
    support = console_client("support")
    assert support.get("/console/rules").status_code == 403
    token = csrf_token(support.get("/console/members").get_data(as_text=True))
    for path in ("/console/rules", f"/console/rules/{created['id']}",
                 f"/console/rules/{created['id']}/pause"):  # fmt: skip
        assert support.post(path, data=FORM | {"csrf_token": token}).status_code == 403
    analyst = console_client("analyst")
    page = analyst.get("/console/rules").get_data(as_text=True)
    assert "Signup bonus: 200 points" in page and "Always" in page
    assert "New rule" not in page and "Pause" not in page
    edit = analyst.get(f"/console/rules/{created['id']}").get_data(as_text=True)
    assert "Save rule" not in edit and "can read this rule but not change it" in edit
    assert analyst.get("/console/rules/new").status_code == 403
    token = csrf_token(page)
    for path in ("/console/rules", f"/console/rules/{created['id']}",
                 f"/console/rules/{created['id']}/pause"):  # fmt: skip
        assert analyst.post(path, data=FORM | {"csrf_token": token}).status_code == 403
    session.expire_all()
    rule = session.get(EarningRule, created["id"])
    assert rule.active is True and rule.name == "Welcome"
    assert rule.starts_at is None or rule.starts_at <= datetime.now(UTC)


ACTION_FORM = FORM | {
    "name": "Product reviews",
    "trigger": "action",
    "multiplier": "",
    "points": "50",
    "categories": "",
    "min_spend": "",
    "tiers": [],
    "starts_at": "",
    "ends_at": "",
    "action_type": "review",
    "per_month": "3",
}


def test_an_action_rule_with_caps_in_plain_words(console_client, client, admin, session):
    console = console_client("owner")
    answer = post_form(console, "/console/rules", ACTION_FORM, page="/console/rules/new")
    assert answer.status_code == 303, answer.get_data(as_text=True)
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Product reviews"))
    api = client.get(f"/v1/earning-rules/{rule.id}", headers=admin).get_json()
    assert api["trigger"] == "action" and api["points"] == 50
    assert api["conditions"] == {"action_type": "review"}
    assert api["caps"] == {"per_month": 3}
    page = console.get("/console/rules").get_data(as_text=True)
    assert "50 points per product review, at most 3 a month" in page
    edit = console.get(f"/console/rules/{rule.id}").get_data(as_text=True)
    assert 'value="review"' in edit and 'value="3"' in edit
    assert '<option value="social_follow">' in edit  # the built-in types offered

    follow = ACTION_FORM | {"name": "Follow us", "action_type": "social_follow",
                            "points": "100", "per_month": "", "lifetime": "1"}  # fmt: skip
    answer = post_form(console, f"/console/rules/{rule.id}", follow)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    session.refresh(rule)
    assert rule.caps == {"lifetime": 1} and rule.conditions == {"action_type": "social_follow"}
    assert "100 points once for following us" in console.get("/console/rules").get_data(
        as_text=True
    )


def test_a_refused_action_rule_shows_why_beside_its_fields(console_client, session):
    console = console_client("owner")
    before = rules_count(session)
    bad = ACTION_FORM | {"action_type": "Product Review!", "per_day": "0"}
    answer = post_form(console, "/console/rules", bad, page="/console/rules/new")
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'id="action_type-error"' in page and "starting with a letter or digit" in page
    assert 'id="per_day-error"' in page
    missing = post_form(console, "/console/rules", ACTION_FORM | {"action_type": ""},
                        page="/console/rules/new")  # fmt: skip
    assert missing.status_code == 422
    assert "An action rule names its action" in missing.get_data(as_text=True)
    assert rules_count(session) == before


LAPSE_FORM = FORM | {
    "name": "Come back",
    "trigger": "lapse",
    "multiplier": "",
    "points": "200",
    "categories": "",
    "min_spend": "",
    "tiers": [],
    "starts_at": "",
    "ends_at": "",
    "days": "90",
}


def test_a_win_back_rule_made_and_edited_on_the_form(console_client, client, admin, session):
    console = console_client("owner")
    answer = post_form(console, "/console/rules", LAPSE_FORM, page="/console/rules/new")
    assert answer.status_code == 303, answer.get_data(as_text=True)
    rule = session.scalar(select(EarningRule).where(EarningRule.name == "Come back"))
    api = client.get(f"/v1/earning-rules/{rule.id}", headers=admin).get_json()
    assert (api["trigger"], api["points"], api["conditions"]) == ("lapse", 200, {"days": 90})
    page = console.get("/console/rules").get_data(as_text=True)
    assert "200 points to members who haven&#39;t ordered for 90 days, once each time" in page
    edit = console.get(f"/console/rules/{rule.id}").get_data(as_text=True)
    assert 'name="days"' in edit and 'value="90"' in edit
    assert '<option selected value="lapse">' in edit or 'value="lapse" selected' in edit

    answer = post_form(console, f"/console/rules/{rule.id}", LAPSE_FORM | {"days": "120"})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    session.refresh(rule)
    assert rule.conditions == {"days": 120}
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "earning_rule.update")).all()
    assert audit[-1].after["conditions"] == {"days": 120}


def test_a_win_back_rule_without_its_days_is_refused_beside_the_field(console_client, session):
    console = console_client("owner")
    before = rules_count(session)
    missing = post_form(console, "/console/rules", LAPSE_FORM | {"days": ""},
                        page="/console/rules/new")  # fmt: skip
    assert missing.status_code == 422
    assert "after how many days without a paid order" in missing.get_data(as_text=True)
    too_many = post_form(console, "/console/rules", LAPSE_FORM | {"days": "5000"},
                         page="/console/rules/new")  # fmt: skip
    assert too_many.status_code == 422
    assert 'id="days-error"' in too_many.get_data(as_text=True)
    assert rules_count(session) == before
