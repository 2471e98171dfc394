"""Balance lookups: 30 a minute per client, and 10 failures in 15 minutes lock it out.

The lockout counters live in the database (or Redis), never in one process's memory.
"""

import secrets
from datetime import timedelta

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from loyalty.errors import NotFound, RateLimited
from loyalty.extensions import db
from loyalty.types import utcnow
from rewards.giftcards import service, throttle
from rewards.giftcards.models import GiftCardLookupFailure
from tests.conftest import make_app, service_missing
from tests.giftcards.helpers import issue, lookup

REDIS_URL = "redis://127.0.0.1:6379/0"


def wrong_code() -> str:
    return "0000-0000-0000-" + secrets.token_hex(2).upper().replace("A", "B")


def assert_locked_out(response):
    assert response.status_code == 429
    assert response.get_json()["type"] == "rate-limited"
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def check_lockout(client, storefront, good_code):
    answers = [lookup(client, storefront, wrong_code(), ip="10.1.1.1") for _ in range(30)]
    assert [r.status_code for r in answers[:10]] == [404] * 10
    for response in answers[10:]:
        assert_locked_out(response)
    # Locked out means the right code too, from that client...
    assert_locked_out(lookup(client, storefront, good_code, ip="10.1.1.1"))
    # ...while another client is not affected.
    other = lookup(client, storefront, good_code, ip="10.2.2.2")
    assert other.status_code == 200, other.get_json()


def test_thirty_wrong_lookups_lock_the_client_out_but_not_others(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    check_lockout(client, storefront, gc["code"])


def test_more_than_thirty_lookups_a_minute_are_throttled(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    answers = [lookup(client, storefront, gc["code"], ip="10.3.3.3") for _ in range(31)]
    assert [r.status_code for r in answers[:30]] == [200] * 30
    assert answers[30].status_code == 429
    assert answers[30].get_json()["type"] == "rate-limited"
    assert 0 < int(answers[30].headers["Retry-After"]) <= 60
    assert lookup(client, storefront, gc["code"], ip="10.4.4.4").status_code == 200


def test_the_lockout_ends_after_fifteen_minutes(session):
    """Through the service with a moving clock: failures age out, the lock lifts."""
    defer_now = []
    lockout = throttle.DatabaseLockout(session, defer_now.append)
    now = utcnow()
    for _ in range(throttle.MAX_FAILURES):
        with pytest.raises(NotFound):
            service.lookup(session, lockout, "10.9.9.9", wrong_code(), ["k"], now)
        defer_now.pop()()  # what the request does after its rollback
    with pytest.raises(RateLimited) as locked:
        service.lookup(session, lockout, "10.9.9.9", wrong_code(), ["k"], now)
    assert locked.value.retry_after == 15 * 60
    later = now + timedelta(minutes=15, seconds=1)
    with pytest.raises(NotFound):  # unlocked: answered (and counted) again
        service.lookup(session, lockout, "10.9.9.9", wrong_code(), ["k"], later)
    removed = throttle.purge_lookup_failures(session, later + timedelta(minutes=15), 100)
    assert removed >= throttle.MAX_FAILURES


def test_lockout_is_shared_by_separate_app_instances(pg_app, pg_keys):
    """Two app instances (as two gunicorn workers would be) on one database share the count."""
    other_instance = make_app(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    first, second = pg_app.test_client(), other_instance.test_client()
    storefront = pg_keys["storefront"]
    for _ in range(5):
        assert lookup(first, storefront, wrong_code(), ip="10.5.5.5").status_code == 404
    for _ in range(5):
        assert lookup(second, storefront, wrong_code(), ip="10.5.5.5").status_code == 404
    assert_locked_out(lookup(first, storefront, wrong_code(), ip="10.5.5.5"))
    assert_locked_out(lookup(second, storefront, wrong_code(), ip="10.5.5.5"))
    with other_instance.app_context():
        db.engine.dispose()


@pytest.fixture
def with_redis(request, app):
    """The app configured with REDIS_URL for the lockout counters (and nothing else changed)."""
    store = redis_lib.Redis.from_url(REDIS_URL)
    try:
        store.ping()
    except redis_lib.ConnectionError:
        service_missing(request.config, f"Redis not reachable at {REDIS_URL}")
    app.config["REDIS_URL"] = REDIS_URL
    app.extensions.pop("giftcards.redis", None)
    yield store
    app.config["REDIS_URL"] = ""
    app.extensions.pop("giftcards.redis", None)
    for key in store.scan_iter("loyalty:gift-card-lookup:*"):
        store.delete(key)
    store.close()


def test_with_redis_the_lockout_counts_live_in_redis(
    client, admin, storefront, session, with_redis
):
    gc = issue(client, admin, amount=999)
    check_lockout(client, storefront, gc["code"])
    assert with_redis.pttl("loyalty:gift-card-lookup:lock:10.1.1.1") > 0
    assert with_redis.zcard("loyalty:gift-card-lookup:fail:10.1.1.1") == 10
    failures = session.scalar(select(func.count()).select_from(GiftCardLookupFailure))
    assert failures == 0  # nothing went to the database
