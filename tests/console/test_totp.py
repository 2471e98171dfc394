"""The second factor: enrolment from the profile page, then a code after the password."""

import re
import time

import pyotp
from sqlalchemy import select

from console import totp
from console.models import Admin
from loyalty.audit import AuditLog
from tests.console.conftest import PASSWORD, csrf_token, post_form, sign_in


def _enrol(client) -> str:
    """Turn the second factor on through the profile page; returns the secret shown."""
    answer = post_form(client, "/console/profile/totp/start", {}, page="/console/profile")
    assert answer.status_code == 303
    page = client.get("/console/profile/totp").get_data(as_text=True)
    assert "<svg" in page and "QR code for your authenticator app" in page
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = pyotp.TOTP(secret).now()
    answer = client.post(
        "/console/profile/totp", data={"code": code, "csrf_token": csrf_token(page)}
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return secret


def test_enrolment_needs_a_right_code_and_then_sign_in_asks_for_one(app, console_client, session):
    client = console_client("admin")
    post_form(client, "/console/profile/totp/start", {}, page="/console/profile")
    page = client.get("/console/profile/totp").get_data(as_text=True)
    wrong = client.post(
        "/console/profile/totp", data={"code": "000000", "csrf_token": csrf_token(page)}
    )
    assert wrong.status_code == 422
    assert "That code is wrong or expired" in wrong.get_data(as_text=True)
    session.expire_all()
    assert session.get(Admin, client.admin.id).totp_enabled_at is None

    secret = _enrol(client)
    session.expire_all()
    admin = session.get(Admin, client.admin.id)
    assert admin.totp_enabled_at is not None
    assert secret not in admin.totp_secret  # sealed at rest
    assert (
        session.scalar(select(AuditLog.actor).where(AuditLog.action == "admin.totp_on"))
        == f"admin:{admin.id}"
    )

    other = app.test_client()
    answer = sign_in(other, admin.email)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/sign-in/code"
    assert other.get("/console/settings").status_code == 302  # not signed in yet
    code_page = other.get("/console/sign-in/code").get_data(as_text=True)
    assert "Code from your authenticator app" in code_page
    token = csrf_token(code_page)
    bad = other.post("/console/sign-in/code", data={"code": "123456", "csrf_token": token})
    assert bad.status_code == 401
    assert other.get("/console/settings").status_code == 302
    # the code the enrolment used is spent; the next step's is good
    next_code = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    good = other.post("/console/sign-in/code", data={"code": next_code, "csrf_token": token})
    assert good.status_code == 303
    assert other.get("/console/settings").status_code == 200


def test_a_code_is_good_once(app, make_admin, session):
    admin = make_admin("owner")
    with app.test_request_context("/console/profile"):
        totp.start(session, admin)
        secret = totp.pending_secret(admin)
        now = time.time()
        code = pyotp.TOTP(secret).at(now)
        assert totp.confirm(session, admin, code) is True
        assert totp.check_code(session, admin, code, now) is False  # replayed
        later = pyotp.TOTP(secret).at(now + totp.STEP_SECONDS)
        assert totp.check_code(session, admin, later, now + totp.STEP_SECONDS) is True
        far = pyotp.TOTP(secret).at(now + 10 * totp.STEP_SECONDS)
        assert totp.check_code(session, admin, far, now + 2 * totp.STEP_SECONDS) is False


def test_wrong_codes_count_towards_the_lockout(app, console_client, monkeypatch):
    monkeypatch.setitem(app.config, "CONSOLE_SIGN_IN_MAX_FAILURES", 2)
    client = console_client("owner")
    secret = _enrol(client)
    other = app.test_client()
    sign_in(other, client.admin.email)
    token = csrf_token(other.get("/console/sign-in/code").get_data(as_text=True))
    for _ in range(2):
        assert (
            other.post(
                "/console/sign-in/code", data={"code": "000000", "csrf_token": token}
            ).status_code
            == 401
        )
    good = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    locked = other.post("/console/sign-in/code", data={"code": good, "csrf_token": token})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)


def test_turning_it_off_needs_the_password(console_client, session):
    client = console_client("owner")
    _enrol(client)
    wrong = post_form(
        client, "/console/profile/totp/off", {"password": "not it at all"}, page="/console/profile"
    )
    assert wrong.status_code == 422
    assert "That is not your current password." in wrong.get_data(as_text=True)
    right = post_form(
        client, "/console/profile/totp/off", {"password": PASSWORD}, page="/console/profile"
    )
    assert right.status_code == 303
    session.expire_all()
    admin = session.get(Admin, client.admin.id)
    assert admin.totp_enabled_at is None and admin.totp_secret is None


def test_reseal_moves_the_secrets_to_the_newest_key(app, make_admin, session, runner, monkeypatch):
    admin = make_admin("owner")
    with app.test_request_context("/console/profile"):
        totp.start(session, admin)
        secret = totp.pending_secret(admin)
    session.commit()
    sealed = admin.totp_secret
    monkeypatch.setitem(app.config, "SECRET_KEYS", [*app.config["SECRET_KEYS"], "a newer key"])
    result = runner.invoke(args=["admins", "reseal-totp"])
    assert result.exit_code == 0, result.output
    assert "1 resealed, 0 opened by no key" in result.output
    session.expire_all()
    admin = session.get(Admin, admin.id)
    assert admin.totp_secret != sealed
    monkeypatch.setitem(app.config, "SECRET_KEYS", ["a newer key"])  # the old ones dropped
    with app.test_request_context("/console/profile"):
        assert totp.pending_secret(admin) == secret
