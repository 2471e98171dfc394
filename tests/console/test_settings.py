"""Program settings in the console: the API's validation, the audit record, roles."""

from decimal import Decimal

from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.program.service import get_program
from tests.console.conftest import post_form

SETTINGS = {
    "currency": "EUR",
    "points_per_unit": "2.5",
    "pending_days": "14",
    "expiry_inactive_days": "",
    "qualifying_period": "rolling_365",
    "checkout_enabled": "y",
    "checkout_value_per_point": "0.5",
    "checkout_min_points": "200",
    "checkout_step": "50",
    "checkout_max_share_of_cart": "30",
    "checkout_code_valid_hours": "48",
}


def test_an_owner_changes_the_settings_and_the_change_is_audited_as_them(console_client, session):
    client = console_client("owner")
    answer = post_form(client, "/console/settings", SETTINGS)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    session.expire_all()
    program = get_program(session)
    assert program.currency == "EUR"
    assert program.points_per_unit == Decimal("2.5")
    assert program.pending_days == 14
    assert program.expiry_inactive_days is None
    assert program.qualifying_period == "rolling_365"
    audit = session.scalar(
        select(AuditLog).where(AuditLog.action == "program.update").order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{client.admin.id}"
    assert audit.after["currency"] == "EUR" and audit.before["currency"] != "EUR"
    page = client.get("/console/settings").get_data(as_text=True)
    assert "Program settings saved." in page


def test_what_the_api_refuses_the_console_refuses_with_the_same_words(
    console_client, session, admin
):
    client = console_client("admin")
    before = client.get("/v1/program", headers=admin).get_json()
    answer = post_form(client, "/console/settings", {**SETTINGS, "pending_days": "5000"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    api = client.put("/v1/program", json={"pending_days": 5000}, headers=admin).get_json()
    message = api["errors"]["pending_days"][0]
    assert message in page
    assert 'id="pending_days-error"' in page
    assert client.get("/v1/program", headers=admin).get_json() == before  # nothing changed


def test_support_gets_the_not_allowed_page(console_client):
    client = console_client("support")
    answer = client.get("/console/settings")
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "Not allowed" in page and "<html" in page
    assert (
        post_form(client, "/console/settings", SETTINGS, page="/console/members").status_code == 403
    )
    assert ">Settings</a>" not in client.get("/console/members").get_data(as_text=True)


def test_an_analyst_reads_the_settings_but_cannot_change_them(console_client, session):
    client = console_client("analyst")
    page = client.get("/console/settings").get_data(as_text=True)
    assert "Save settings" not in page
    assert "can read these settings but not change them" in page
    token_page = "/console/settings"
    answer = post_form(client, "/console/settings", SETTINGS, page=token_page)
    assert answer.status_code == 403
    session.expire_all()
    assert get_program(session).currency != "EUR"


def test_points_at_checkout_are_set_on_the_settings_page(console_client, session, admin):
    client = console_client("owner")
    page = client.get("/console/settings").get_data(as_text=True)
    assert "Points at checkout" in page and 'name="checkout_enabled"' in page
    assert "When on: 100 points take $1.00 off" in page
    answer = post_form(client, "/console/settings", SETTINGS)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    shown = client.get("/v1/program", headers=admin).get_json()["checkout_points"]
    assert shown == {"enabled": True, "value_per_point": "0.5", "min_points": 200, "step": 50,
                     "max_share_of_cart": 30, "code_valid_hours": 48}  # fmt: skip
    audit = session.scalar(
        select(AuditLog).where(AuditLog.action == "program.update").order_by(AuditLog.id.desc())
    )
    assert audit.actor == f"admin:{client.admin.id}"
    assert audit.after["checkout_points"] == shown
    page = client.get("/console/settings").get_data(as_text=True)
    assert 'value="0.5"' in page
    assert "Now: 200 points take €1.00 off; a code takes at most 30% of the cart" in page


def test_points_at_checkout_refusals_sit_beside_their_fields(console_client, admin):
    client = console_client("owner")
    before = client.get("/v1/program", headers=admin).get_json()
    answer = post_form(
        client, "/console/settings",
        {**SETTINGS, "checkout_min_points": "120", "checkout_value_per_point": "0"},
    )  # fmt: skip
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'id="checkout_value_per_point-error"' in page and "Must be &gt; 0." in page
    answer = post_form(client, "/console/settings", {**SETTINGS, "checkout_min_points": "120"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'id="checkout_min_points-error"' in page and "Must be a multiple of step." in page
    empty = post_form(client, "/console/settings", {**SETTINGS, "checkout_step": ""})
    assert empty.status_code == 422
    assert 'id="checkout_step-error"' in empty.get_data(as_text=True)
    assert client.get("/v1/program", headers=admin).get_json() == before
