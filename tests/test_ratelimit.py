"""The one limiter: moving windows in memory, in the database or in Redis; per-route limits;
what happens when Redis is down."""

import logging
import re
import uuid

import pytest
import redis as redis_lib
from flask import Flask

from loyalty import ratelimit
from loyalty.auth import create_api_key
from loyalty.extensions import db
from tests.conftest import make_app, rolled_back, service_missing
from tests.giftcards.helpers import issue, lookup
from tests.statements import recorded
from tests.widget.test_widget_api import enroll, mint

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens there: every connection is refused


def redis_or_skip(request):
    try:
        redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis_lib.RedisError:
        service_missing(request.config, f"Redis not reachable at {REDIS_URL}")


def check_moving_window(counters, clock, shared):
    """3 a minute: the fourth waits until the first hit is a minute old, not for a new window."""
    three = counters.limiter("3/minute", "scope", shared=shared)
    seen = []
    for _ in range(3):
        seen.append(three.acquire("ana"))
        clock[0] += 10
    assert [(w.allowed, w.remaining) for w in seen] == [(True, 2), (True, 1), (True, 0)]
    assert seen[0].reset_at == 1_000_060  # when the oldest hit stops counting
    assert not three.test("ana")
    refused = three.acquire("ana")
    assert (refused.allowed, refused.reset_at) == (False, 1_000_060)
    assert three.resets_in("ana") == 30
    assert not three.hit("ana")
    # Another key, or another scope, has its own window.
    assert three.test("ben") and counters.limiter("3/minute", "other", shared=shared).test("ana")
    clock[0] = 1_000_061  # the first hit has expired: room for exactly one
    assert three.test("ana") and three.resets_in("ana") == 0
    assert three.hit("ana")
    assert not three.hit("ana")
    three.clear("ana")
    assert three.acquire("ana").remaining == 2


def test_process_windows_are_moving_windows():
    clock = [1_000_000.0]
    counters = ratelimit.Counters({"RATELIMIT_ENABLED": True}, clock=lambda: clock[0])
    check_moving_window(counters, clock, shared=False)


def test_database_windows_are_moving_windows_too(app, session):
    clock = [1_000_000.0]
    counters = ratelimit.Counters(app.config, clock=lambda: clock[0])
    check_moving_window(counters, clock, shared=True)


def test_with_redis_the_limiter_reads_the_keys_it_writes(request):
    redis_or_skip(request)
    app = limited_app(REDIS_URL, f"test-moving-{uuid.uuid4().hex}")
    three = app.extensions["loyalty.ratelimit"].limiter("3/minute", "scope")
    assert [three.acquire("ana").remaining for _ in range(3)] == [2, 1, 0]
    assert not three.test("ana") and not three.hit("ana")
    assert 0 < three.resets_in("ana") <= 60
    assert three.test("ben")
    ratelimit.reset(app)
    assert three.test("ana")


def limited_app(storage_uri: str, prefix: str = "loyalty-limits") -> Flask:
    """A bare app with one view limited to 2 a minute per `?who=`."""
    from flask import request

    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI=storage_uri, RATELIMIT_KEY_PREFIX=prefix)
    ratelimit.init_app(app)
    from loyalty.error_handlers import register_error_handlers
    from loyalty.transaction import discard

    register_error_handlers(app, rollback=discard)

    @app.get("/limited")
    @ratelimit.limit("test-scope", lambda: request.args["who"], limits="2/minute")
    def limited():
        return {"ok": True}

    return app


def test_a_limited_view_answers_429_problem_with_retry_after_once_the_allowance_is_spent():
    client = limited_app("memory://").test_client()
    first, second, third = (client.get("/limited?who=ana") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
        "2",
        "1",
    )
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert third.mimetype == "application/problem+json"
    assert third.get_json()["type"] == "rate-limited"
    assert third.get_json()["detail"] == "2 per 1 minute"
    assert 1 <= int(third.headers["Retry-After"]) <= 61
    assert client.get("/limited?who=ben").status_code == 200  # another key, its own allowance


def test_without_redis_each_process_counts_alone():
    one, two = limited_app("memory://").test_client(), limited_app("memory://").test_client()
    assert [one.get("/limited?who=ana").status_code for _ in range(3)] == [200, 200, 429]
    assert two.get("/limited?who=ana").status_code == 200


def test_with_redis_every_process_shares_the_counters(request):
    redis_or_skip(request)
    prefix = f"test-shared-{uuid.uuid4().hex}"
    apps = limited_app(REDIS_URL, prefix), limited_app(REDIS_URL, prefix)
    one, two = (app.test_client() for app in apps)
    assert one.get("/limited?who=ana").status_code == 200
    assert two.get("/limited?who=ana").status_code == 200
    refused = one.get("/limited?who=ana")
    assert refused.status_code == 429
    assert refused.get_json()["type"] == "rate-limited"
    ratelimit.reset(apps[0])


def test_rate_limits_can_be_switched_off():
    app = limited_app("memory://")
    app.config["RATELIMIT_ENABLED"] = False
    client = app.test_client()
    assert [client.get("/limited?who=ana").status_code for _ in range(4)] == [200] * 4


# --- Redis down ----------------------------------------------------------------------------------


def storage_errors(client) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = re.search(r"^loyalty_rate_limit_storage_errors_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1))


@pytest.fixture
def redis_down(app):
    """The app's database, with its rate-limit storage pointed at a port nobody listens on."""
    broken = make_app(app.config["SQLALCHEMY_DATABASE_URI"], RATELIMIT_STORAGE_URI=CLOSED_PORT)
    with rolled_back(broken):
        yield broken
    with broken.app_context():
        db.engine.dispose()


def test_a_redis_outage_does_not_fail_widget_reads_or_gift_card_lookups(redis_down, caplog):
    client = redis_down.test_client()
    _row, key = create_api_key(db.session, "outage", ["admin"])
    db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    errors_before = storage_errors(client)
    enroll(client, headers, "ana")
    token = {"Authorization": f"Bearer {mint(client, headers, 'ana')}"}
    gc = issue(client, headers, amount=700)
    with caplog.at_level(logging.WARNING, logger="loyalty.ratelimit"):
        me = client.get("/v1/me", headers=token)
        found = lookup(client, headers, gc["code"], ip="10.30.0.1")
    assert me.status_code == 200, me.get_json()
    assert me.headers["X-RateLimit-Limit"] == "120"  # still limited, in this process
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["balance"] == 700
    assert "rate limit storage failed" in caplog.text
    assert storage_errors(client) > errors_before
    # Meanwhile the lockout still holds across processes: counted in the database.
    for _ in range(10):
        assert lookup(client, headers, "0000-0000-0000-0000", ip="10.30.0.2").status_code == 404
    assert lookup(client, headers, gc["code"], ip="10.30.0.2").status_code == 429


def test_after_a_failure_redis_is_left_alone_for_a_while(redis_down, monkeypatch):
    counters = redis_down.extensions["loyalty.ratelimit"]
    calls = []
    original = counters.remote.storage.acquire_entry
    monkeypatch.setattr(
        counters.remote.storage,
        "acquire_entry",
        lambda *args, **kwargs: calls.append(args) or original(*args, **kwargs),
    )
    widget = counters.limiter("5/minute", "widget-read")
    with redis_down.test_request_context():
        assert all(widget.hit("ana") for _ in range(5))
        assert not widget.hit("ana")  # the stand-in counts as Redis would have
    assert len(calls) == 1  # one try, then RATELIMIT_STORAGE_RETRY_SECONDS without it


def test_widget_reads_send_one_statement_whatever_the_limit(client, storefront):
    enroll(client, storefront, "ana")
    token = {"Authorization": f"Bearer {mint(client, storefront, 'ana')}"}
    client.get("/v1/me", headers=token)
    with recorded() as sent:
        assert client.get("/v1/me", headers=token).status_code == 200
    assert len(sent) == 1, sent
