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
