"""Lockout, idle timeout, password changes, the admins CLI and the demo account."""

import re

from sqlalchemy import select

from console import accounts
from console.models import Admin
from console.seed import DEMO_ADMIN_EMAIL, seed_demo_admin
from tests.console.conftest import PASSWORD, post_form, sign_in


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    app, make_admin, monkeypatch
):
    monkeypatch.setitem(app.config, "CONSOLE_SIGN_IN_MAX_FAILURES", 3)
    admin = make_admin("owner")
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, admin.email, "wrong password!").status_code == 401
    locked = sign_in(client, admin.email)
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.get_data(as_text=True)
    # another account from the same address is not locked by this one's failures
    other = make_admin("owner")
    assert sign_in(app.test_client(), other.email).status_code == 303


def test_repeated_failures_from_one_address_lock_that_address(app, make_admin, monkeypatch):
    monkeypatch.setitem(app.config, "CONSOLE_SIGN_IN_ADDRESS_MAX_FAILURES", 3)
    admin = make_admin("owner")
    guesser = app.test_client()
    for n in range(3):
        assert sign_in(guesser, f"guess{n}@example.com", "guess guess").status_code == 401
    assert sign_in(guesser, admin.email).status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert sign_in(elsewhere, admin.email).status_code == 303


def test_a_successful_sign_in_forgets_the_accounts_failures(app, make_admin, monkeypatch):
    monkeypatch.setitem(app.config, "CONSOLE_SIGN_IN_MAX_FAILURES", 2)
    admin = make_admin("owner")
    client = app.test_client()
    assert sign_in(client, admin.email, "wrong password!").status_code == 401
    assert sign_in(client, admin.email).status_code == 303
    other = app.test_client()
    assert sign_in(other, admin.email, "wrong password!").status_code == 401
    assert sign_in(other, admin.email).status_code == 303  # one failure since, not two


def test_an_idle_session_ends(app, console_client, monkeypatch):
    client = console_client("owner")
    assert client.get("/console/settings").status_code == 200
    cookie = client.get_cookie("console_session", path="/console")
    assert cookie.expires is not None  # a permanent cookie, renewed on every request
    # The signature's age is checked against the idle timeout when the cookie is read.
    # Read long after (the signer's clock only), it is refused: signed out.
    monkeypatch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda _self: 10**10)
    assert client.get("/console/settings").status_code == 302


def test_a_new_password_ends_the_other_sessions(app, console_client):
    client = console_client("owner")
    elsewhere = app.test_client()
    sign_in(elsewhere, client.admin.email)
    assert elsewhere.get("/console/settings").status_code == 200
    short = post_form(
        client, "/console/profile/password",
        {"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
        page="/console/profile",
    )  # fmt: skip
    assert short.status_code == 422
    assert "at least 12 characters" in short.get_data(as_text=True)
    new = "a much better one"
    changed = post_form(
        client, "/console/profile/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
        page="/console/profile",
    )  # fmt: skip
    assert changed.status_code == 303
    assert client.get("/console/settings").status_code == 200  # this session goes on
    assert elsewhere.get("/console/settings").status_code == 302  # that one ended
    assert sign_in(app.test_client(), client.admin.email, "a much better one").status_code == 303


def test_the_cli_creates_an_admin_and_prints_the_password_once(app, runner, session):
    result = runner.invoke(
        args=["admins", "create", "--email", "Ops@Example.com", "--role", "support"]
    )
    assert result.exit_code == 0, result.output
    password = result.output.strip().splitlines()[-1]
    assert len(password) >= 16
    admin = session.scalar(select(Admin).where(Admin.email == "ops@example.com"))
    assert admin.role == "support"
    assert password not in admin.password_hash and admin.password_hash.startswith("$argon2id$")
    assert sign_in(app.test_client(), "ops@example.com", password).status_code == 303
    again = runner.invoke(
        args=["admins", "create", "--email", "ops@example.com", "--role", "owner"]
    )
    assert again.exit_code != 0 and "exists already" in again.output
    bad_role = runner.invoke(args=["admins", "create", "--email", "x@example.com", "--role", "god"])
    assert bad_role.exit_code != 0


def test_the_cli_takes_a_typed_password(app, runner, session):
    typed = "typed password 123"
    result = runner.invoke(
        args=[
            "admins",
            "create",
            "--email",
            "t@example.com",
            "--role",
            "analyst",
            "--prompt-password",
        ],
        input=f"{typed}\n{typed}\n",
    )
    assert result.exit_code == 0, result.output
    assert typed not in result.output
    assert sign_in(app.test_client(), "t@example.com", typed).status_code == 303


def test_the_demo_seed_makes_one_owner_with_a_random_password_it_prints(app, session, capsys):
    with app.test_request_context():
        seed_demo_admin(session)
    printed = capsys.readouterr().out
    password = re.search(r"with the password (\S+)", printed).group(1)
    assert "/console/" in printed and DEMO_ADMIN_EMAIL in printed
    admin = accounts.find_by_email(session, DEMO_ADMIN_EMAIL)
    assert admin.role == "owner"
    session.commit()
    assert sign_in(app.test_client(), DEMO_ADMIN_EMAIL, password).status_code == 303
    with app.test_request_context():
        seed_demo_admin(session)  # an admin exists: nothing more
    assert capsys.readouterr().out == ""
