"""Fixtures of the console's tests: admins of each role, test clients signed in through the
real sign-in form, and a real Chromium against the served app.

Test client (fast, SQLite and PostgreSQL, rolled back):
    def test_x(console_client):
        client = console_client("support")          # signed in as a new support admin
        page = client.get("/console/members")
        post_form(client, "/console/settings", {"currency": "EUR", ...})

Browser (Chromium via Playwright, SQLite file with the demo program, served on 127.0.0.1):
    def test_y(console_page, screenshot):
        page = console_page("owner")                # signed in; page.base is the console URL
        page.goto(page.base + "/settings")
        screenshot(page, "settings")                # test-artifacts/console/settings.png
"""

import re
import threading
from pathlib import Path

import pytest

from console import accounts
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.seed import seed_demo_program
from tests.conftest import ROOT, make_app, migrate
from tests.widget.test_widget_browser import TIMEOUT_MS, ServerThread

SCREENSHOTS = ROOT / "test-artifacts" / "console"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]+)"')
_counter = iter(range(1, 1_000_000))
_lock = threading.Lock()


def _email(role: str) -> str:
    with _lock:
        return f"{role}-{next(_counter)}@example.com"


@pytest.fixture(autouse=True)
def _fast_hashing(request):
    """Cheap argon2 parameters where the tests make accounts (never outside tests)."""
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        previous = app.config.get("ADMIN_PASSWORD_HASHING")
        app.config["ADMIN_PASSWORD_HASHING"] = "cheapest"
        yield
        app.config["ADMIN_PASSWORD_HASHING"] = previous
    else:
        yield


@pytest.fixture
def make_admin(session):
    """make_admin(role, email=None, password=PASSWORD) -> the committed Admin."""

    def make(role: str, email: str | None = None, password: str = PASSWORD):
        admin = accounts.create_admin(session, email or _email(role), role, password)
        session.commit()
        return admin

    return make


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return _VALUE.search(found.group(0)).group(1)


def assert_strict_csp(response) -> None:
    """The console's headers: a Content-Security-Policy that allows no other host and no
    inline script, and no framing."""
    csp = response.headers.get("Content-Security-Policy", "")
    directives = dict(
        (part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in csp.split(";")) if part
    )
    assert directives.get("default-src") == "'self'", csp
    assert directives.get("script-src") == "'self'", csp
    assert directives.get("frame-ancestors") == "'none'", csp
    for sources in directives.values():
        for source in sources.split():
            assert source in ("'self'", "'none'", "data:"), (source, csp)
    assert response.headers.get("X-Frame-Options") == "DENY"


def sign_in(client, email: str, password: str = PASSWORD):
    """Sign in through the form (GET for the token, then POST); returns the POST's answer."""
    token = csrf_token(client.get("/console/sign-in").get_data(as_text=True))
    return client.post(
        "/console/sign-in", data={"email": email, "password": password, "csrf_token": token}
    )


def post_form(client, path: str, data: dict, *, page: str | None = None):
    """POST `data` to `path` with the CSRF token of the form on `page` (default: `path`)."""
    token = csrf_token(client.get(page or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


@pytest.fixture
def console_client(app, make_admin):
    """console_client(role) -> a test client signed in as a new admin of `role`; the admin is
    `client.admin`."""

    def make(role: str = "owner"):
        admin = make_admin(role)
        client = app.test_client()
        answer = sign_in(client, admin.email)
        assert answer.status_code == 303, answer.get_data(as_text=True)
        client.admin = admin
        return client

    return make


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture
def live_console(tmp_path):
    """The demo app on a migrated SQLite file, served on 127.0.0.1; yields (app, base URL)."""
    url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    migrate(make_app(url))
    app = make_app(url, ADMIN_PASSWORD_HASHING="cheapest")
    with app.app_context():
        seed_demo_program(db.session, hooks())
        db.session.commit()
    with ServerThread(app) as server:
        yield app, server.url
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_admin(live_console):
    """live_admin(role, password=PASSWORD) -> the email of a new admin in the served app."""
    app, _base = live_console

    def make(role: str, password: str = PASSWORD) -> str:
        with app.app_context():
            admin = accounts.create_admin(db.session, _email(role), role, password)
            db.session.commit()
            return admin.email

    return make


@pytest.fixture
def new_page(browser, live_console):
    """new_page() -> a fresh browser page (own cookies) with `page.base`, the console's URL.
    Every request the page makes to another host is recorded in `page.foreign_requests`."""
    _app, base = live_console

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.base = f"{base}/console"
        page.foreign_requests = []
        page.on(
            "request",
            lambda request: (
                None if request.url.startswith(base) else page.foreign_requests.append(request.url)
            ),
        )
        return page

    return make


def browser_sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto(page.base + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def console_page(new_page, live_admin):
    """console_page(role) -> a browser page signed in as a new admin of `role`."""

    def make(role: str = "owner"):
        page = new_page()
        page.email = live_admin(role)
        browser_sign_in(page, page.email)
        page.wait_for_url(lambda url: "/sign-in" not in url)
        return page

    return make


@pytest.fixture
def screenshot():
    """screenshot(page, name, full_page=True): the page as test-artifacts/console/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
