"""The demo program's console account: an owner with a random password, printed once."""

import click
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import accounts
from console.models import Admin

DEMO_ADMIN_EMAIL = "owner@example.com"


def seed_demo_admin(session: Session) -> None:
    """On the first `make run` (the demo seed runs once): an owner account, unless an admin
    exists already. Its password is random, shown here once and kept only as its hash."""
    if session.scalar(select(func.count()).select_from(Admin)):
        return
    password = accounts.generate_password()
    accounts.create_admin(session, DEMO_ADMIN_EMAIL, "owner", password)
    console_url = current_app.config["LOYALTY_PUBLIC_URL"] + "/console/"
    click.echo(
        "\n"
        f"  Admin console: {console_url}\n"
        f"  Sign in as {DEMO_ADMIN_EMAIL} with the password {password}\n"
        "  (shown only now; change it on your profile page in the console)\n"
    )
