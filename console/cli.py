"""`flask --app wsgi admins ...`: console accounts from the command line."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from console import accounts
from console.models import ROLES, Admin
from loyalty.audit import record_change
from loyalty.errors import DomainError
from loyalty.extensions import db
from loyalty.types import utcnow

admins_cli = AppGroup("admins", help="Admin accounts of the console.")


def _admin(email: str) -> Admin:
    admin = accounts.find_by_email(db.session(), email)
    if admin is None:
        raise click.ClickException(f"No admin with email {email}.")
    return admin


def _password(prompt: bool) -> tuple[str, bool]:
    """(password, generated?)"""
    if prompt:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True), False
    return accounts.generate_password(), True


@admins_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option(
    "--prompt-password",
    is_flag=True,
    help="Type the password (hidden) instead of having one generated and printed once.",
)
def create(email, role, prompt_password):
    """Create an admin; a generated password is printed once, alone on the last line."""
    password, generated = _password(prompt_password)
    try:
        admin = accounts.create_admin(db.session(), email, role, password)
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    db.session.commit()
    if generated:
        click.echo(f"Created admin {admin.email} ({admin.role}). Password, shown only now:")
        click.echo(password)
    else:
        click.echo(f"Created admin {admin.email} ({admin.role}).")


@admins_cli.command("list")
def list_admins():
    """Every admin: email, role, second factor, last sign-in, disabled."""
    for admin in db.session.scalars(select(Admin).order_by(Admin.id)):
        last = admin.last_sign_in_at.isoformat() if admin.last_sign_in_at else "never"
        state = f"disabled {admin.disabled_at.isoformat()}" if admin.disabled_at else "active"
        totp = "totp" if admin.totp_enabled else "password only"
        click.echo(f"{admin.email}\t{admin.role}\t{totp}\tlast sign-in {last}\t{state}")


@admins_cli.command("reset-password")
@click.option("--email", required=True)
@click.option("--prompt-password", is_flag=True, help="Type the new password (hidden).")
def reset_password(email, prompt_password):
    """A new password (every session of the account ends); a generated one is printed once."""
    admin = _admin(email)
    password, generated = _password(prompt_password)
    try:
        accounts.set_password(db.session(), admin, password)
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    db.session.commit()
    click.echo(f"New password for {admin.email}" + (", shown only now:" if generated else "."))
    if generated:
        click.echo(password)


@admins_cli.command("set-role")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
def set_role(email, role):
    """Change an admin's role (their sessions end)."""
    admin = _admin(email)
    before = admin.role
    admin.role = role
    accounts.end_sessions(db.session(), admin)
    record_change(db.session(), "admin.role", "admin", admin.id, {"role": before}, {"role": role})
    db.session.commit()
    click.echo(f"{admin.email} is now {role}.")


@admins_cli.command("disable")
@click.option("--email", required=True)
def disable(email):
    """Disable an admin: they can't sign in, and their sessions end."""
    admin = _admin(email)
    if admin.disabled_at is None:
        admin.disabled_at = utcnow()
        accounts.end_sessions(db.session(), admin)
        record_change(
            db.session(), "admin.disable", "admin", admin.id, None,
            {"disabled_at": admin.disabled_at.isoformat()},
        )  # fmt: skip
        db.session.commit()
    click.echo(f"{admin.email} is disabled.")


@admins_cli.command("reset-totp")
@click.option("--email", required=True)
def reset_totp(email):
    """Turn an admin's second factor off (a lost phone); they can enrol again."""
    admin = _admin(email)
    admin.totp_secret = None
    admin.totp_enabled_at = None
    admin.totp_last_step = None
    accounts.end_sessions(db.session(), admin)
    record_change(db.session(), "admin.totp_reset", "admin", admin.id, None, None)
    db.session.commit()
    click.echo(f"Second factor of {admin.email} is off; they can turn it on again.")


@admins_cli.command("reseal-totp")
def reseal_totp():
    """Seal every second-factor secret under the newest of SECRET_KEYS (after a rotation, so
    the older entries can leave the list)."""
    from flask import current_app

    from console.totp import PURPOSE
    from loyalty.sealing import reseal_column

    done, unreadable = reseal_column(
        db.session(), Admin.totp_secret, PURPOSE, current_app.config["SECRET_KEYS"]
    )
    db.session.commit()
    click.echo(f"second-factor secrets: {done} resealed, {unreadable} opened by no key")
    if unreadable:
        raise SystemExit(1)
