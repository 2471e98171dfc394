"""Signing in and out of the console, its session cookie, lockout and CSRF."""

import re

from sqlalchemy import select

from console.models import Admin
from loyalty.audit import AuditLog
from tests.console.conftest import PASSWORD, csrf_token, post_form, sign_in


def test_an_anonymous_visitor_is_sent_to_the_sign_in_page(client):
    answer = client.get("/console/settings")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/sign-in?next=")
    page = client.get("/console/sign-in").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page
    assert '<label for="password">Password</label>' in page
    assert ">Sign in</button>" in page


def test_the_right_password_signs_in_and_returns_to_the_page_asked_for(client, make_admin):
    admin = make_admin("owner")
    token = csrf_token(client.get("/console/sign-in").get_data(as_text=True))
    answer = client.post(
        "/console/sign-in?next=/console/settings",
        data={"email": admin.email.upper(), "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/settings"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # development: http://127.0.0.1 must work
    page = client.get("/console/settings").get_data(as_text=True)
    assert admin.email in page and "Sign out" in page


def test_a_wrong_password_is_refused_and_says_so(client, make_admin):
    admin = make_admin("owner")
    answer = sign_in(client, admin.email, "not the password")
    assert answer.status_code == 401
    assert "The email or the password is wrong." in answer.get_data(as_text=True)
    assert client.get("/console/settings").status_code == 302  # still signed out


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(client):
    answer = sign_in(client, "nobody@example.com", "whatever it is")
    assert answer.status_code == 401
    assert "The email or the password is wrong." in answer.get_data(as_text=True)


def test_a_disabled_admin_cannot_sign_in(client, make_admin, session):
    from loyalty.types import utcnow

    admin = make_admin("admin")
    admin.disabled_at = utcnow()
    session.commit()
    assert sign_in(client, admin.email).status_code == 401


def test_a_next_address_on_another_host_is_ignored(client, make_admin):
    admin = make_admin("owner")
    token = csrf_token(client.get("/console/sign-in").get_data(as_text=True))
    answer = client.post(
        "/console/sign-in?next=//evil.example/console",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/dashboard"  # an owner's home


def test_a_form_post_without_its_csrf_token_is_refused(console_client, app):
    client = console_client("owner")
    before = client.get("/console/settings")
    assert before.status_code == 200
    answer = client.post("/console/settings", data={"currency": "EUR", "pending_days": "1"})
    assert answer.status_code == 400
    assert "security token" in answer.get_data(as_text=True)
    wrong = client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert client.get("/console/settings").status_code == 200  # still signed in


def test_sign_out_ends_the_session_and_its_cookie_no_longer_works(console_client, app):
    client = console_client("owner")
    cookie = client.get_cookie("console_session", path="/console").value
    answer = post_form(client, "/console/sign-out", {}, page="/console/settings")
    assert answer.status_code == 303
    assert client.get("/console/settings").status_code == 302
    replay = app.test_client()
    replay.set_cookie("console_session", cookie, path="/console")
    assert replay.get("/console/settings").status_code == 302  # the old cookie is dead too


def test_the_api_stays_cookie_free(console_client, admin):
    client = console_client("owner")
    answer = client.get("/v1/program", headers=admin)
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    assert client.get("/healthz").headers.get("Set-Cookie") is None


def test_the_session_cookie_is_secure_in_production(client, make_admin, app, monkeypatch):
    monkeypatch.setitem(app.config, "CONSOLE_COOKIE_SECURE", True)
    admin = make_admin("owner")
    # A Secure cookie is not sent back over http: look at the one set.
    answer = sign_in(client, admin.email)
    assert re.search(r"; Secure", answer.headers["Set-Cookie"])


def test_every_sign_in_is_recorded_and_changes_are_audited_as_the_admin(console_client, session):
    client = console_client("owner")
    admin = session.scalar(select(Admin).where(Admin.email == client.admin.email))
    assert admin.last_sign_in_at is not None
    created = session.scalar(
        select(AuditLog).where(
            AuditLog.action == "admin.create", AuditLog.object_id == str(admin.id)
        )
    )
    assert created is not None


def test_a_nul_in_a_form_is_refused_before_the_database_sees_it(client):
    token = csrf_token(client.get("/console/sign-in").get_data(as_text=True))
    answer = client.post(
        "/console/sign-in",
        data={"email": "a\x00@example.com", "password": "x\x00y", "csrf_token": token},
    )
    assert answer.status_code == 400
    assert "can&#39;t be kept" in answer.get_data(as_text=True)
