"""Admin accounts: creating them, checking passwords (argon2id), roles and what they allow.

Services take the session and flush; the request (or the CLI command) commits.
"""

import contextlib
import secrets

import argon2
from argon2 import PasswordHasher, profiles
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.models import ROLES, Admin
from loyalty.audit import record_change
from loyalty.errors import Conflict, ValidationFailed
from loyalty.types import utcnow

MIN_PASSWORD_LENGTH = 12

# What each role may do in the console. A page or action names a permission (see
# console.auth.requires); owner and admin hold every one.
PERMISSIONS: dict[str, frozenset[str]] = {
    # program configuration, read-only: settings, tiers, earning rules, rewards
    "program.view": frozenset({"owner", "admin", "analyst"}),
    # changing it
    "program.edit": frozenset({"owner", "admin"}),
    # members: look up, adjust points with a reason, cancel reward codes, review referrals
    "members.view": frozenset({"owner", "admin", "support"}),
    "members.adjust": frozenset({"owner", "admin", "support"}),
    "members.erase": frozenset({"owner", "admin"}),
    "codes.cancel": frozenset({"owner", "admin", "support"}),
    "referrals.review": frozenset({"owner", "admin", "support"}),
    # gift cards: look up (by last 4 or id), disable or adjust with a reason; issuing new
    # value is for owners and admins
    "giftcards.view": frozenset({"owner", "admin", "support"}),
    "giftcards.manage": frozenset({"owner", "admin", "support"}),
    "giftcards.issue": frozenset({"owner", "admin"}),
    # awarding bonus points to a whole segment of members
    "segments.award": frozenset({"owner", "admin"}),
    # outbound webhook endpoints and their deliveries
    "webhooks.manage": frozenset({"owner", "admin"}),
    # server API keys: owners only
    "keys.manage": frozenset({"owner"}),
    # who changed what
    "audit.view": frozenset({"owner", "admin"}),
    # reports and the dashboard (read-only): not support's, whose work is members
    "reports.view": frozenset({"owner", "admin", "analyst"}),
}

ROLE_DESCRIPTIONS = {
    "owner": "Everything: members, program configuration and settings.",
    "admin": "Everything: members, program configuration and settings.",
    "support": "Looks up members, adjusts points with a reason, cancels codes, reviews referrals.",
    "analyst": "Reads reports and the program's configuration; changes nothing.",
}


def may(role: str, permission: str) -> bool:
    """Does `role` hold `permission`? (An unknown permission is a programming error.)"""
    return role in PERMISSIONS[permission]


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _hasher() -> PasswordHasher:
    """argon2id, RFC 9106's low-memory profile; ADMIN_PASSWORD_HASHING=cheapest (tests only)
    makes hashing fast where the tests make many accounts."""
    if current_app.config.get("ADMIN_PASSWORD_HASHING") == "cheapest":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )


def generate_password() -> str:
    """A random password of about 128 bits, easy to copy (letters, digits, - and _)."""
    return secrets.token_urlsafe(16)


def new_session_token() -> str:
    return secrets.token_hex(16)


def find_by_email(session: Session, email: str) -> Admin | None:
    return session.scalar(select(Admin).where(Admin.email == normalize_email(email)))


def create_admin(session: Session, email: str, role: str, password: str) -> Admin:
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationFailed(f"The role must be one of {', '.join(ROLES)}.")
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("Give the admin's email address.")
    check_password_strength(password)
    if session.scalar(select(func.count()).where(Admin.email == email)):
        raise Conflict(f"An admin with email {email} exists already.")
    admin = Admin(
        email=email,
        role=role,
        password_hash=hash_password(password),
        session_token=new_session_token(),
    )
    session.add(admin)
    session.flush()
    record_change(session, "admin.create", "admin", admin.id, None, {"email": email, "role": role})
    return admin


# A hash to check a password against when no account has the email, so an unknown email
# takes as long to refuse as a wrong password (made once per hashing profile).
_DUMMY_HASHES: dict[str, str] = {}


def verify_password(session: Session, email: str, password: str) -> Admin | None:
    """The active admin with this email and password, or None. Rehashes a password hashed
    with older parameters (the caller commits)."""
    admin = find_by_email(session, email)
    hasher = _hasher()
    if admin is None or not admin.is_active:
        profile = current_app.config.get("ADMIN_PASSWORD_HASHING", "")
        dummy = _DUMMY_HASHES.get(profile)
        if dummy is None:
            dummy = _DUMMY_HASHES[profile] = hasher.hash(secrets.token_hex(16))
        with contextlib.suppress(argon2.exceptions.VerificationError):
            hasher.verify(dummy, password)
        return None
    try:
        hasher.verify(admin.password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if hasher.check_needs_rehash(admin.password_hash):
        admin.password_hash = hasher.hash(password)
    return admin


def set_password(session: Session, admin: Admin, password: str) -> None:
    """A new password; every other session of the account ends."""
    check_password_strength(password)
    admin.password_hash = hash_password(password)
    admin.session_token = new_session_token()
    session.flush()
    record_change(session, "admin.password", "admin", admin.id, None, None)


def end_sessions(session: Session, admin: Admin) -> None:
    """Every session of the account ends (its cookies no longer name a live session)."""
    admin.session_token = new_session_token()
    session.flush()


def record_sign_in(session: Session, admin: Admin) -> None:
    admin.last_sign_in_at = utcnow()
    session.flush()
