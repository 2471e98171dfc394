"""Signing in and out, and the signed-in admin's profile."""

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from console import accounts, bp, lockout
from console.auth import current_admin
from console.forms import SignInForm
from console.nav import home_url
from loyalty.extensions import db


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


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(home_url())
    form = SignInForm()
    if not form.validate_on_submit():
        return render_template("console/sign_in.html", form=form), 422 if form.errors else 200
    email = form.email.data
    wait = lockout.locked_for(email)
    if wait:
        form.form_errors.append(f"Too many failed sign-ins. Try again in {_minutes(wait)}.")
        return render_template("console/sign_in.html", form=form), 429
    admin = accounts.verify_password(db.session, email, form.password.data)
    if admin is None:
        lockout.failed(email)
        form.form_errors.append("The email or the password is wrong.")
        return render_template("console/sign_in.html", form=form), 401
    lockout.succeeded(email)
    return _signed_in(admin)


def _signed_in(admin):
    target = _safe_next(request.args.get("next"))
    session.clear()
    login_user(admin)
    session.permanent = True
    accounts.record_sign_in(db.session, admin)
    return redirect(target or home_url(), 303)


@bp.post("/sign-out")
@login_required
def sign_out():
    accounts.end_sessions(db.session, current_admin())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"), 303)


@bp.get("/profile")
@login_required
def profile():
    return render_template(
        "console/profile.html",
        admin=current_admin(),
        role_description=accounts.ROLE_DESCRIPTIONS[current_admin().role],
    )
