"""The admin console: server-rendered pages under /console on the services the API uses.

A package beside the domains, not inside the core: its pages use rewards and referrals, and
the core never imports a domain. `create_app` wires it in with `init_app(app)` (blueprints,
the console's cookie session, sign-in, CSRF, headers, the `admins` CLI); the demo admin of
`make run` is among the demo seeds of `loyalty.wiring`.

Every page is a view of a blueprint registered under the `console` blueprint (see PAGES);
its templates extend console/base.html. See docs/console.md.
"""

from datetime import timedelta

from flask import Flask, abort, current_app, g, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import BadRequest, HTTPException

from console import nav
from console.blueprint import bp
from console.sessions import ConsoleSessionInterface

csrf = CSRFProtect()

# No other host, no inline script or style, no framing, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def init_app(app: Flask) -> None:
    from console import account, apidocs, cli, models, pages  # noqa: F401 - views, table

    config = app.config
    app.session_interface = ConsoleSessionInterface()
    # Only the console has sessions: its idle timeout is the session's lifetime.
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=config["CONSOLE_IDLE_MINUTES"])
    config["SECRET_KEY_FALLBACKS"] = list(config["SECRET_KEYS"][:-1])
    # CSRF is checked by the console's own before_request (below), never on the API.
    config.setdefault("WTF_CSRF_ENABLED", True)
    config["WTF_CSRF_CHECK_DEFAULT"] = False
    config["WTF_CSRF_METHODS"] = {"POST", "PUT", "PATCH", "DELETE"}
    config.setdefault("WTF_CSRF_FIELD_NAME", "csrf_token")
    config.setdefault("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"])
    config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # as long as the session lives
    config.setdefault("WTF_CSRF_SSL_STRICT", True)
    app.extensions["csrf"] = csrf
    # Flask-Login without its app-wide hooks: the console never sets a remember-me cookie,
    # and API requests must not pay for a hook they never need.
    from console.auth import login_manager

    app.login_manager = login_manager  # type: ignore[attr-defined]  # where Flask-Login looks
    app.register_blueprint(bp)
    app.register_blueprint(apidocs.bp)  # /docs: Swagger UI from vendored files
    app.cli.add_command(cli.admins_cli)


@bp.before_request
def _console_request():
    from console.auth import set_audit_actor

    # What Flask-WTF and Flask-Login keep in `g` belongs to one request; an outer app context
    # (the CLI's, the tests') is shared by the requests made in it.
    for name in ("csrf_token", "csrf_valid", "_login_user"):
        g.pop(name, None)
    if current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect()
    if request.method == "POST" and any("\x00" in value for value in request.form.values()):
        # No text column takes a NUL (PostgreSQL refuses it): refused before any form sees it.
        raise BadRequest("The form contained a character that can't be kept (NUL).")
    set_audit_actor()


@bp.after_request
def _security_headers(response):
    response.headers.extend(SECURITY_HEADERS)
    return response


@bp.context_processor
def _template_globals():
    from console.auth import can

    entries = nav.entries()
    return {
        "csrf_token": generate_csrf,
        "current_admin": current_user,
        "can": can,
        "nav": entries,
        "nav_groups": nav.grouped(entries),
        "program_name": current_app.config["CONSOLE_PROGRAM_NAME"],
    }


def _error_page(status: int, title: str, message: str):
    return render_template("console/error.html", title=title, message=message), status


@bp.errorhandler(403)
def _forbidden(_error):
    return _error_page(
        403,
        "Not allowed",
        "Your role does not let you open this page. Ask an owner of the console if you need it.",
    )


@bp.errorhandler(404)
def _not_found(_error):
    return _error_page(404, "Page not found", "There is no console page at this address.")


@bp.errorhandler(405)
def _method_not_allowed(_error):
    return _error_page(405, "Not allowed", "This page does not take that kind of request.")


@bp.errorhandler(CSRFError)
def _csrf_refused(_error):
    return _error_page(
        400,
        "The form has expired",
        "The form was sent without its security token or with an old one. Go back, "
        "reload the page and send it again.",
    )


@bp.errorhandler(Exception)
def _other_error(error):
    """Any other error of a console page: the console's page for it, never the API's JSON."""
    if isinstance(error, HTTPException):
        return _error_page(error.code or 500, error.name, error.description or "")
    current_app.logger.exception("Unhandled error")
    return _error_page(
        500, "Something went wrong", "The page could not be shown. Nothing was changed."
    )


@bp.route("/<path:_anything>")
def _no_such_page(_anything):
    abort(404)  # the console's own 404 page, not the API's problem+json
