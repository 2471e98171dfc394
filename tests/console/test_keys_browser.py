"""API keys in a real Chromium: an owner creates a key and sees it exactly once (gone after a
reload), the key works against the API, and revoking it (confirmed) makes the API refuse it."""

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.browser


def _status(base: str, path: str, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_create_a_key_see_it_once_use_it_and_revoke_it(console_page, live_console, screenshot):
    _app, base = live_console
    page = console_page("owner")
    page.goto(page.base + "/api-keys")
    assert page.get_by_text("No API keys yet.").is_visible()
    page.get_by_role("link", name="New API key").click()
    page.get_by_label("Name").fill("Shop backend")
    page.get_by_role("button", name="Create key").click()
    assert page.get_by_text("Pick at least one scope.").is_visible()
    page.get_by_label("storefront").check()
    screenshot(page, "api-key-form")
    page.get_by_role("button", name="Create key").click()

    key = page.locator("#api-key").inner_text()
    assert key.startswith("lk_") and page.get_by_text("shown only this once").is_visible()
    screenshot(page, "api-key-created")
    assert _status(base, "/v1/members/nobody", key) == 404  # accepted: the member is unknown

    page.reload()  # the browser sends the form again: nothing new is made, nothing shown
    assert page.locator("#api-key").count() == 0
    assert key not in page.content()
    assert page.get_by_role("row").filter(has_text="Shop backend").count() == 1
    assert "already created" in page.get_by_role("status").inner_text()
    screenshot(page, "api-keys")

    page.get_by_role("link", name="Revoke Shop backend").click()
    screenshot(page, "api-key-revoke")
    page.get_by_role("button", name="Revoke key").click()
    assert "revoked" in page.get_by_role("status").inner_text()
    row = page.get_by_role("row").filter(has_text="Shop backend")
    assert "Revoked" in row.inner_text()
    screenshot(page, "api-keys-revoked")
    assert _status(base, "/v1/members/nobody", key) == 401
    assert page.foreign_requests == []


def test_an_admin_who_is_not_an_owner_cannot_open_the_keys(console_page):
    page = console_page("admin")
    page.goto(page.base + "/api-keys")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    assert page.get_by_role("link", name="API keys").count() == 0
