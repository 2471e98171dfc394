"""Rate limit windows count as limits' fixed window does, in memory or not."""

import time
import uuid

import pytest
import redis as redis_lib
from flask import Flask
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from loyalty import ratelimit
from loyalty.ratelimit import ProcessWindows, StorageWindows
from tests.conftest import service_missing

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip(request):
    try:
        redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis_lib.RedisError:
        service_missing(request.config, f"Redis not reachable at {REDIS_URL}")


@pytest.mark.parametrize("counters", ["process", "storage"])
def test_windows_allow_the_amount_then_refuse_until_the_window_ends(counters, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    windows = (
        ProcessWindows()
        if counters == "process"
        else StorageWindows(FixedWindowRateLimiter(MemoryStorage()))
    )
    three = parse("3/minute")
    seen = [windows.hit(three, "scope", "ana") for _ in range(4)]
    assert [(allowed, remaining) for allowed, remaining, _reset in seen] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    assert {reset for _allowed, _remaining, reset in seen} == {clock[0] + 60}
    # Another key, or another scope, has its own window.
    assert windows.hit(three, "scope", "ben")[:2] == (True, 2)
    assert windows.hit(three, "other", "ana")[:2] == (True, 2)
    # A new window opens once the old one has ended.
    clock[0] += 61
    assert windows.hit(three, "scope", "ana") == (True, 2, clock[0] + 60)


def limited_app(storage_uri: str) -> Flask:
    """A bare app with one view limited to 2 a minute per `?who=`."""
    from flask import request

    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI=storage_uri)
    ratelimit.init_app(app)
    from loyalty.errors import register_error_handlers

    register_error_handlers(app)

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
    one, two = limited_app(REDIS_URL).test_client(), limited_app(REDIS_URL).test_client()
    who = f"ana-{uuid.uuid4().hex}"
    assert one.get(f"/limited?who={who}").status_code == 200
    assert two.get(f"/limited?who={who}").status_code == 200
    refused = one.get(f"/limited?who={who}")
    assert refused.status_code == 429
    assert refused.get_json()["type"] == "rate-limited"


def test_rate_limits_can_be_switched_off():
    app = limited_app("memory://")
    app.config["RATELIMIT_ENABLED"] = False
    client = app.test_client()
    assert [client.get("/limited?who=ana").status_code for _ in range(4)] == [200] * 4
