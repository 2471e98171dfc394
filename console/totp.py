"""The optional second factor: a TOTP code (RFC 6238) from an authenticator app.

The secret is made when an admin starts turning it on (`start`), shown once as a QR code and
as text, and in force only after they type a code it produced (`confirm`). It is kept sealed
(loyalty.sealing, purpose "admin-totp"; `flask admins reseal-totp` moves it to the newest
secret). A code is accepted for the current 30-second step or the one before or after (clock
drift), and never twice: the last accepted step is stored.
"""

import hmac
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy.orm import Session

from console.models import Admin
from loyalty.audit import record_change
from loyalty.sealing import sealer
from loyalty.types import utcnow

PURPOSE = "admin-totp"
STEP_SECONDS = 30
DRIFT_STEPS = 1


def _secret(admin: Admin) -> str:
    if admin.totp_secret is None:
        raise ValueError(f"admin {admin.id} has no second factor")
    return sealer(PURPOSE).unseal(admin.totp_secret)


def start(session: Session, admin: Admin) -> None:
    """A new secret, not in force until `confirm`ed (replaces one not yet confirmed)."""
    if admin.totp_enabled:
        return
    admin.totp_secret = sealer(PURPOSE).seal(pyotp.random_base32())
    admin.totp_last_step = None
    session.flush()


def pending_secret(admin: Admin) -> str | None:
    """The secret being set up (to show), or None."""
    if admin.totp_enabled or admin.totp_secret is None:
        return None
    return _secret(admin)


def provisioning_uri(admin: Admin, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(
        name=admin.email, issuer_name=current_app.config["CONSOLE_PROGRAM_NAME"]
    )


def qr_svg(text: str) -> str:
    """`text` as a QR code: an inline <svg> element (no image from anywhere, no style)."""
    return segno.make(text, error="m").svg_inline(
        scale=5,
        border=3,
        dark="#1d2330",
        light="#ffffff",
        title="QR code for your authenticator app",
    )


def _matching_step(secret: str, code: str, now: float) -> int | None:
    code = "".join(code.split())
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def check_code(session: Session, admin: Admin, code: str, now: float | None = None) -> bool:
    """Is `code` a good code of the admin's secret not used before? Marks it used."""
    if admin.totp_secret is None:
        return False
    step = _matching_step(_secret(admin), code, time.time() if now is None else now)
    if step is None or (admin.totp_last_step is not None and step <= admin.totp_last_step):
        return False
    admin.totp_last_step = step
    session.flush()
    return True


def confirm(session: Session, admin: Admin, code: str) -> bool:
    """Turn the second factor on if `code` comes from the secret being set up."""
    if admin.totp_enabled or not check_code(session, admin, code):
        return False
    admin.totp_enabled_at = utcnow()
    session.flush()
    record_change(session, "admin.totp_on", "admin", admin.id, None, None)
    return True


def turn_off(session: Session, admin: Admin) -> None:
    admin.totp_secret = None
    admin.totp_enabled_at = None
    admin.totp_last_step = None
    session.flush()
    record_change(session, "admin.totp_off", "admin", admin.id, None, None)
