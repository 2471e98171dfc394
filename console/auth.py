"""Who is signed in to the console, and what their role lets them open.

Flask-Login keeps the signed-in admin in the console's cookie session (console.sessions) as
"<id>:<session token>"; an account whose token changed (sign-out, new password, disabled)
is signed out everywhere. Pages name what they need with `@requires("permission")`
(console.accounts.PERMISSIONS): an anonymous visitor is sent to the sign-in page, a signed-in
admin without the permission gets the 403 page.
"""

import functools

from flask import abort, g
from flask_login import LoginManager, current_user
from sqlalchemy import select

from console.accounts import may
from console.models import Admin
from loyalty.extensions import db

login_manager = LoginManager()
login_manager.login_view = "console.sign_in"
login_manager.login_message = "Sign in to open that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@login_manager.user_loader
def _load_admin(user_id: str) -> Admin | None:
    admin_id, _, token = user_id.partition(":")
    if not admin_id.isdigit() or not token:
        return None
    admin = db.session.scalar(
        select(Admin).where(Admin.id == int(admin_id), Admin.session_token == token)
    )
    if admin is None or not admin.is_active:
        return None
    return admin


def current_admin() -> Admin:
    """The signed-in admin (in a view behind `requires`)."""
    return current_user._get_current_object()


def can(permission: str) -> bool:
    """May the signed-in admin do this? (False when nobody is signed in.)"""
    return bool(current_user.is_authenticated) and may(current_user.role, permission)


def requires(permission: str):
    """Decorate a console view: the signed-in admin must hold `permission`.

    Not signed in: a redirect to the sign-in page (and back here afterwards). Signed in
    without the permission: 403, the console's "not allowed" page.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not may(current_user.role, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.console_permission = permission
        return wrapper

    return decorator


def set_audit_actor() -> None:
    """Changes made in this request are audited as the signed-in admin's."""
    if current_user.is_authenticated:
        g.audit_actor = current_user.audit_name
