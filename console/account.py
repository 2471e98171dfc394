"""Signing in (password, then the second factor when on) and out, and the admin's profile:
a new password, the authenticator app."""

import time

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from console import accounts, lockout, totp
from console.auth import current_admin
from console.blueprint import bp
from console.forms import ChangePasswordForm, ConfirmTotpForm, SignInForm, TotpForm, TurnOffTotpForm
from console.models import Admin
from console.nav import home_url
from loyalty.errors import DomainError
from loyalty.extensions import db

PENDING = "signing_in"  # session key: the admin whose password was right, awaiting a code
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str | None:
    """A console path to return to after signing in; anything else (another host) is dropped."""
    if not target or not target.startswith("/console") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("console.sign_in"))
    return redirect(home_url())


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _locked(form, email: str) -> bool:
    wait = lockout.locked_for(email)
    if wait:
        form.form_errors.append(f"Too many failed sign-ins. Try again in {_minutes(wait)}.")
    return bool(wait)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(home_url())
    form = SignInForm()
    if not form.validate_on_submit():
        return render_template("console/sign_in.html", form=form), 422 if form.errors else 200
    email = form.email.data
    if _locked(form, email):
        return render_template("console/sign_in.html", form=form), 429
    admin = accounts.verify_password(db.session(), email, form.password.data)
    if admin is None:
        lockout.failed(email)
        form.form_errors.append("The email or the password is wrong.")
        return render_template("console/sign_in.html", form=form), 401
    target = _safe_next(request.args.get("next"))
    if admin.totp_enabled:
        session.clear()
        session[PENDING] = {"admin": admin.get_id(), "at": int(time.time()), "next": target}
        return redirect(url_for("console.sign_in_code"), 303)
    lockout.succeeded(email)
    return _signed_in(admin, target)


def _pending_admin() -> tuple[Admin | None, str | None]:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, None
    admin_id, _, token = str(pending.get("admin", "")).partition(":")
    if not admin_id.isdigit():
        return None, None
    admin = db.session.scalar(
        select(Admin).where(Admin.id == int(admin_id), Admin.session_token == token)
    )
    if admin is None or not admin.is_active or not admin.totp_enabled:
        return None, None
    return admin, pending.get("next")


@bp.route("/sign-in/code", methods=["GET", "POST"])
def sign_in_code():
    admin, target = _pending_admin()
    if admin is None:
        session.pop(PENDING, None)
        flash("Sign in again: the sign-in was not finished in time.", "info")
        return redirect(url_for("console.sign_in"), 303)
    form = TotpForm()
    if not form.validate_on_submit():
        return render_template("console/sign_in_code.html", form=form), 422 if form.errors else 200
    if _locked(form, admin.email):
        return render_template("console/sign_in_code.html", form=form), 429
    if not totp.check_code(db.session(), admin, form.code.data):
        lockout.failed(admin.email)
        form.code.errors = ["That code is wrong, expired or used already. Type the current one."]
        return render_template("console/sign_in_code.html", form=form), 401
    lockout.succeeded(admin.email)
    return _signed_in(admin, target)


def _signed_in(admin: Admin, target: str | None):
    session.clear()  # nothing of before the sign-in carries over (a new CSRF token too)
    login_user(admin)
    session.permanent = True
    accounts.record_sign_in(db.session(), admin)
    return redirect(target or home_url(), 303)


@bp.post("/sign-out")
@login_required
def sign_out():
    accounts.end_sessions(db.session(), current_admin())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"), 303)


# --- profile ----------------------------------------------------------------------------------


def _profile(status=200, **forms):
    admin = current_admin()
    forms.setdefault("password_form", ChangePasswordForm())
    forms.setdefault("turn_off_form", TurnOffTotpForm())
    return render_template(
        "console/profile.html",
        admin=admin,
        role_description=accounts.ROLE_DESCRIPTIONS[admin.role],
        **forms,
    ), status


@bp.get("/profile")
@login_required
def profile():
    return _profile()


@bp.post("/profile/password")
@login_required
def change_password():
    admin = current_admin()
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _profile(422, password_form=form)
    if accounts.verify_password(db.session(), admin.email, form.current_password.data) is None:
        form.current_password.errors = ["That is not your current password."]
        return _profile(422, password_form=form)
    try:
        accounts.set_password(db.session(), admin, form.new_password.data)
    except DomainError as error:
        form.new_password.errors = [error.detail]
        return _profile(422, password_form=form)
    login_user(admin)  # this session goes on under the new session token; the others end
    session.permanent = True
    flash("Your password is changed. Your other sessions are signed out.", "success")
    return redirect(url_for("console.profile"), 303)


@bp.post("/profile/totp/start")
@login_required
def totp_start():
    totp.start(db.session(), current_admin())
    return redirect(url_for("console.totp_setup"), 303)


@bp.route("/profile/totp", methods=["GET", "POST"])
@login_required
def totp_setup():
    admin = current_admin()
    secret = totp.pending_secret(admin)
    if secret is None:
        return redirect(url_for("console.profile"), 303)
    form = ConfirmTotpForm()
    status = 200
    if form.validate_on_submit():
        if totp.confirm(db.session(), admin, form.code.data):
            flash("Two-step sign-in is on: you will be asked for a code after your password.",
                  "success")  # fmt: skip
            return redirect(url_for("console.profile"), 303)
        form.code.errors = ["That code is wrong or expired. Type the current one."]
        status = 422
    elif form.errors:
        status = 422
    uri = totp.provisioning_uri(admin, secret)
    return render_template(
        "console/totp_setup.html",
        form=form,
        secret=secret,
        qr=totp.qr_svg(uri),
    ), status


@bp.post("/profile/totp/off")
@login_required
def totp_off():
    admin = current_admin()
    form = TurnOffTotpForm()
    if not form.validate_on_submit():
        return _profile(422, turn_off_form=form)
    if accounts.verify_password(db.session(), admin.email, form.password.data) is None:
        form.password.errors = ["That is not your current password."]
        return _profile(422, turn_off_form=form)
    totp.turn_off(db.session(), admin)
    flash("Two-step sign-in is off.", "info")
    return redirect(url_for("console.profile"), 303)
