"""Webhooks in a real Chromium, against a real receiver on loopback: create an endpoint and see
its secret once, see failed deliveries and send one again, rotate the secret (both sign during
the overlap), disable the endpoint (nothing more is sent)."""

import pytest

from loyalty.extensions import db
from loyalty.webhooks import emit
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.browser


def _emit(app, customer_id: str) -> None:
    with app.app_context():
        data = {"customer_id": customer_id, "points": 120, "order_id": f"ord-{customer_id}"}
        emit(db.session, "points.earned", data)
        db.session.commit()
        db.session.remove()


def _deliver(app) -> None:
    result = app.test_cli_runner().invoke(args=["loyalty", "jobs", "deliver-webhooks"])
    assert result.exit_code == 0, result.output


def test_an_endpoint_from_creation_to_disabled(console_page, live_console, screenshot, monkeypatch):
    app, _base = live_console
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 1)  # a failure gives up at once
    with Receiver(statuses=[500, 503]) as receiver:
        page = console_page("admin")
        page.goto(page.base + "/webhooks")
        assert page.get_by_text("No endpoints yet.").is_visible()
        page.get_by_role("link", name="New endpoint").click()
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("points.earned").check()
        page.get_by_label("tier.changed").check()
        screenshot(page, "webhook-form")
        page.get_by_role("button", name="Create endpoint").click()
        secret = page.locator("#signing-secret").inner_text()
        assert secret.startswith("whsec_")
        screenshot(page, "webhook-secret")
        page.reload()  # sent again: nothing new, no secret
        assert page.locator("#signing-secret").count() == 0 and secret not in page.content()
        assert page.get_by_role("row").filter(has_text=receiver.url).count() == 1

        for customer in ("cus-1", "cus-2"):
            _emit(app, customer)
        _deliver(app)  # both answered 500 and 503: given up
        _emit(app, "cus-3")
        _deliver(app)  # delivered
        page.goto(page.base + "/webhooks")
        assert "1 delivered" in page.get_by_role("row").filter(has_text=receiver.url).inner_text()
        screenshot(page, "webhooks")

        page.get_by_role("link", name=receiver.url).click()
        rows = page.locator(".deliveries-table tbody tr")
        assert rows.count() == 3
        assert "HTTP 503" in rows.nth(1).inner_text() and "Failed" in rows.nth(1).inner_text()
        screenshot(page, "webhook-endpoint")
        page.get_by_role("link", name="Failed only").click()
        assert rows.count() == 2
        rows.first.get_by_role("button", name="Send again").click()
        assert "sent again" in page.get_by_role("status").inner_text()
        assert rows.count() == 1  # still on "failed only"
        _deliver(app)
        assert [r.verified(secret)["data"]["customer_id"] for r in receiver.requests] == [
            "cus-1", "cus-2", "cus-3", "cus-2",
        ]  # fmt: skip

        page.get_by_role("link", name="Rotate secret").click()
        screenshot(page, "webhook-rotate")
        page.get_by_role("button", name="Rotate secret").click()
        new_secret = page.locator("#signing-secret").inner_text()
        assert new_secret.startswith("whsec_") and new_secret != secret
        assert "signed with both the old and the new secret" in page.content()
        screenshot(page, "webhook-rotated")
        _emit(app, "cus-4")
        _deliver(app)
        last = receiver.requests[-1]
        assert last.verified(new_secret) == last.verified(secret)  # both sign in the overlap

        page.get_by_role("link", name="go to the endpoint").click()
        page.get_by_role("button", name="Disable").click()
        assert "disabled" in page.get_by_role("status").inner_text()
        screenshot(page, "webhook-endpoint-disabled")
        _emit(app, "cus-5")
        _deliver(app)
        assert len(receiver.requests) == 5  # nothing for the disabled endpoint
    assert page.foreign_requests == []
