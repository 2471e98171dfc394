"""The unsubscribe page in Chromium: it asks, then unsubscribes; with JavaScript off and under
its own strict CSP (the stylesheet loads, nothing else is fetched)."""

import pytest
from sqlalchemy import select

from loyalty.email.service import unsubscribe_token
from loyalty.extensions import db
from loyalty.members.models import Member
from tests.conftest import ROOT, make_app, migrate
from tests.widget.test_widget_browser import TIMEOUT_MS, ServerThread

SCREENSHOTS = ROOT / "test-artifacts" / "email"


@pytest.fixture
def live(tmp_path):
    url = f"sqlite:///{tmp_path / 'email.sqlite3'}"
    migrate(make_app(url))
    app = make_app(url, EMAIL_PROGRAM_NAME="Maison Rewards")
    with app.app_context():
        member = Member(customer_id="c_page", email="page@example.com")
        db.session.add(member)
        db.session.commit()
        token = unsubscribe_token(member.id)
    with ServerThread(app) as server:
        yield app, f"{server.url}/email/unsubscribe/{token}"
    with app.app_context():
        db.engine.dispose()


def test_the_page_asks_then_unsubscribes(browser, live):
    app, link = live
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 640}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems = []
    page.on("console", lambda message: problems.append(message.text))
    base = link.split("/email/")[0]
    foreign = []
    page.on("request", lambda r: None if r.url.startswith(base) else foreign.append(r.url))

    response = page.goto(link)
    assert response.headers["referrer-policy"] == "no-referrer"
    assert page.get_by_role("heading", name="Maison Rewards").is_visible()
    button = page.get_by_role("button", name="Unsubscribe")
    assert button.is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") == "460px"
    page.screenshot(path=str(SCREENSHOTS / "unsubscribe-ask.png"), full_page=True)
    button.click()
    page.get_by_test_id("done").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "unsubscribe-done.png"), full_page=True)
    assert problems == [] and foreign == []  # no CSP violation, nothing from elsewhere
    with app.app_context():
        assert db.session.scalar(select(Member.email_unsubscribed_at)) is not None
    context.close()
