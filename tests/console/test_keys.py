"""API keys in the console (owners only): created with the key shown once, usable at once
against the API, revoked with a confirmation and refused from then on — by every worker."""

import re

import pytest
from sqlalchemy import func, select

from console import accounts
from loyalty.audit import AuditLog
from loyalty.auth import ApiKey
from loyalty.extensions import db
from tests.conftest import bearer, make_app
from tests.console.conftest import post_form, sign_in

KEY = re.compile(r"lk_[A-Za-z0-9_-]{20,}")


def _keys(session) -> list[ApiKey]:
    session.rollback()  # see what the console's requests committed
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def _create(client, name="Shop backend", scopes=("storefront",), submission=None):
    form = {"name": name, "scopes": list(scopes)}
    if submission:
        form["submission"] = submission
    return post_form(client, "/console/api-keys/new", form)


@pytest.mark.parametrize("role", ["admin", "support", "analyst"])
def test_only_owners_open_any_keys_page(console_client, session, keys, role):
    key_id = _keys(session)[0].id
    other = console_client(role)
    for path in ("/console/api-keys", "/console/api-keys/new",
                 f"/console/api-keys/{key_id}/revoke"):  # fmt: skip
        assert other.get(path).status_code == 403, path
    for path in ("/console/api-keys/new", f"/console/api-keys/{key_id}/revoke"):
        answer = post_form(other, path, {"name": "x", "scopes": ["admin"]}, page="/console/profile")
        assert answer.status_code == 403, path
    assert len(_keys(session)) == len(keys)  # nothing made, nothing revoked
    assert all(k.revoked_at is None for k in _keys(session))
    nav = other.get("/console/profile").get_data(as_text=True)
    assert "/console/api-keys" not in nav


def test_a_key_made_in_the_console_works_once_shown_and_revoked_is_refused(
    console_client, client, session
):
    owner = console_client("owner")
    answer = _create(owner, "Reports dashboard", ["reports"], submission="k-1")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    [key] = set(KEY.findall(answer.get_data(as_text=True)))
    [row] = [k for k in _keys(session) if k.name == "Reports dashboard"]
    assert row.scopes == ["reports"] and key.startswith(row.prefix) and key not in row.key_hash

    reports = client.get("/v1/reports/cohorts?by=first_order_month", headers=bearer(key))
    assert reports.status_code == 200
    assert client.get("/v1/program", headers=bearer(key)).status_code == 403  # its scope only

    # The same form sent again makes no second key and shows none.
    again = _create(owner, "Reports dashboard", ["reports"], submission="k-1")
    assert again.status_code == 303
    assert len([k for k in _keys(session) if k.name == "Reports dashboard"]) == 1
    listing = owner.get(again.headers["Location"]).get_data(as_text=True)
    assert KEY.search(listing.replace(row.prefix + "…", "")) is None
    assert "already created" in listing and f"{row.prefix}…" in listing

    confirm = owner.get(f"/console/api-keys/{row.id}/revoke").get_data(as_text=True)
    assert "Revoke key" in confirm and "Reports dashboard" in confirm
    answer = post_form(owner, f"/console/api-keys/{row.id}/revoke", {})
    assert answer.status_code == 303
    assert "revoked" in owner.get("/console/api-keys").get_data(as_text=True)
    refused = client.get("/v1/reports/cohorts?by=first_order_month", headers=bearer(key))
    assert (refused.status_code, refused.get_json()["type"]) == (401, "unauthorized")

    session.rollback()
    audit = session.scalars(
        select(AuditLog).where(AuditLog.object_type == "api_key", AuditLog.object_id == str(row.id))
        .order_by(AuditLog.id)
    ).all()  # fmt: skip
    assert [(a.action, a.actor) for a in audit] == [
        ("api_key.create", owner.admin.audit_name),
        ("api_key.revoke", owner.admin.audit_name),
    ]
    assert key not in str(audit[0].after) and audit[0].after["scopes"] == ["reports"]


def test_a_key_needs_a_name_and_a_scope(console_client, session, keys):
    owner = console_client("owner")
    for form, message in (
        ({"name": "No scope"}, "Pick at least one scope."),
        ({"name": "", "scopes": ["admin"]}, "Name the key"),
        ({"name": "Bad", "scopes": ["everything"]}, "is not a valid choice"),
    ):
        answer = post_form(owner, "/console/api-keys/new", form)
        assert answer.status_code == 422
        page = answer.get_data(as_text=True)
        assert message in page and KEY.search(page) is None
    assert len(_keys(session)) == len(keys)


def test_revoking_a_revoked_key_changes_nothing(console_client, session, keys):
    owner = console_client("owner")
    key_id = _keys(session)[0].id
    assert post_form(owner, f"/console/api-keys/{key_id}/revoke", {}).status_code == 303
    revoked_at = _keys(session)[0].revoked_at
    answer = post_form(owner, f"/console/api-keys/{key_id}/revoke", {}, page="/console/api-keys")
    assert answer.status_code == 303
    assert _keys(session)[0].revoked_at == revoked_at
    session.rollback()
    count = select(func.count()).where(AuditLog.action == "api_key.revoke")
    assert session.scalar(count) == 1
    assert owner.get("/console/api-keys/999999/revoke").status_code == 404


def test_a_key_revoked_in_the_console_is_refused_by_another_worker_at_once(pg_app):
    """Two apps on one database are two workers, each caching keys for 300 s."""
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    console_worker = make_app(url, CONFIG_CACHE_SECONDS=300, ADMIN_PASSWORD_HASHING="cheapest")
    api_worker = make_app(url, CONFIG_CACHE_SECONDS=300)
    try:
        with console_worker.app_context():
            owner = accounts.create_admin(db.session, "owner@example.com", "owner",
                                          "correct horse battery staple")  # fmt: skip
            db.session.commit()
            console = console_worker.test_client()
            assert sign_in(console, owner.email).status_code == 303
            answer = _create(console, "Storefront", ["storefront"])
            [key] = set(KEY.findall(answer.get_data(as_text=True)))
        api = api_worker.test_client()
        member = {"id": "c_w", "email": "w@example.com"}
        assert api.post("/v1/members", json=member, headers=bearer(key)).status_code == 201
        assert api.get("/v1/members/c_w", headers=bearer(key)).status_code == 200  # cached now

        with console_worker.app_context():
            key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "Storefront"))
            assert post_form(console, f"/console/api-keys/{key_id}/revoke", {}).status_code == 303
        assert api.get("/v1/members/c_w", headers=bearer(key)).status_code == 401
    finally:
        for app in (console_worker, api_worker):
            with app.app_context():
                db.engine.dispose()
