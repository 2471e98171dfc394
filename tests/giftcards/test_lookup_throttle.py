"""Guessing gift card codes: one allowance and one failure count for every endpoint that takes a
code, per shopper address, per card and per API key; 10 failures in 15 minutes lock out.

The counters live in the database (or Redis), never in one process's memory.
"""

import secrets
import uuid
from datetime import UTC, datetime

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from loyalty import ratelimit
from loyalty.auth import create_api_key
from loyalty.errors import NotFound, RateLimited
from loyalty.extensions import db
from loyalty.jobs import purge_rate_limits
from loyalty.ratelimit.models import RateLimitEntry
from rewards.giftcards import service, throttle
from tests.conftest import bearer, make_app, service_missing
from tests.giftcards.helpers import hold, issue, lookup

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRETS = ["test-secret-old", "test-secret-new"]


def wrong_code() -> str:
    return "0000-0000-0000-" + secrets.token_hex(2).upper().replace("A", "B")


def assert_locked_out(response):
    assert response.status_code == 429, response.get_json()
    assert response.get_json()["type"] == "rate-limited"
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def shopper_lookup(client, headers, code, shopper, server="10.0.0.1"):
    """A lookup from the storefront's server, forwarding its shopper's address."""
    return client.post(
        "/v1/gift-cards/lookup",
        json={"code": code, "ip": shopper},
        headers=headers,
        environ_base={"REMOTE_ADDR": server},
    )


def miss(client, headers, shopper, server="10.0.0.1") -> int:
    """A lookup of a code that is no card's: the status it got."""
    return shopper_lookup(client, headers, wrong_code(), shopper, server).status_code


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


def test_ten_wrong_lookups_lock_the_client_out_but_not_others(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    check_lockout(client, storefront, gc["code"])


def test_more_than_thirty_requests_a_minute_are_throttled_per_client_and_per_card(
    client, admin, storefront
):
    gc, other_card = issue(client, admin, amount=1234), issue(client, admin, amount=99)
    answers = [lookup(client, storefront, gc["code"], ip="10.3.3.3") for _ in range(31)]
    assert [r.status_code for r in answers[:30]] == [200] * 30
    assert answers[30].status_code == 429
    assert answers[30].get_json()["type"] == "rate-limited"
    assert 0 < int(answers[30].headers["Retry-After"]) <= 60
    # Another client has its own allowance; the card, looked up from anywhere, has its own too.
    assert lookup(client, storefront, other_card["code"], ip="10.4.4.4").status_code == 200
    assert lookup(client, storefront, gc["code"], ip="10.4.4.4").status_code == 429


def test_holds_and_lookups_share_one_allowance(client, admin, storefront):
    gc = issue(client, admin, amount=100_000)
    for i in range(15):
        assert lookup(client, storefront, gc["code"], ip="10.6.6.6").status_code == 200
        made = hold(client, storefront, gc["code"], 10, order_id=f"o{i}", ip="10.6.6.7")
        assert made.status_code == 201, made.get_json()
    # 30 requests took the card's allowance, whatever the endpoint.
    refused = hold(client, storefront, gc["code"], 10, order_id="o-last", ip="10.6.6.8")
    assert refused.status_code == 429


def test_unknown_codes_on_holds_count_as_failures_and_lock_lookups_out(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    shopper = "198.51.100.20"
    for i in range(10):
        missed = hold(client, storefront, wrong_code(), 100, order_id=f"o{i}", ip=shopper)
        assert missed.status_code == 404
    assert_locked_out(shopper_lookup(client, storefront, gc["code"], shopper))
    assert_locked_out(hold(client, storefront, gc["code"], 100, ip=shopper))
    assert shopper_lookup(client, storefront, gc["code"], "198.51.100.21").status_code == 200


def test_failed_lookups_lock_holds_out(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    shopper = "198.51.100.30"
    for _ in range(10):
        assert shopper_lookup(client, storefront, wrong_code(), shopper).status_code == 404
    # Even a hold that would only have said "insufficient funds" (and so shown the balance).
    assert_locked_out(hold(client, storefront, gc["code"], 999_999, ip=shopper))


def dead_card_answers(client, admin, storefront):
    """The answers to an unknown, a malformed and a disabled code, on lookup and on hold."""
    disabled = issue(client, admin, amount=500)
    response = client.post(f"/v1/gift-cards/{disabled['id']}/disable", json={}, headers=admin)
    assert response.status_code == 200
    codes = {"unknown": wrong_code(), "malformed": "not-a-code", "disabled": disabled["code"]}
    answers = {}
    for n, (name, code) in enumerate(codes.items()):
        shopper = f"192.0.2.{n + 1}"  # each its own allowance: nothing but the code differs
        found = shopper_lookup(client, storefront, code, shopper)
        held = hold(client, storefront, code, 100, ip=shopper)
        answers[name] = [(r.status_code, sorted(r.headers.items()), r.data) for r in (found, held)]
    return answers


def test_unknown_malformed_and_disabled_codes_get_byte_identical_answers(client, admin, storefront):
    answers = dead_card_answers(client, admin, storefront)
    assert answers["unknown"][0][0] == answers["unknown"][1][0] == 404
    assert answers["unknown"] == answers["malformed"] == answers["disabled"]
    assert answers["unknown"][0] == answers["unknown"][1]  # and the same on both endpoints


def test_a_disabled_card_counts_as_a_failure_on_holds_as_an_unknown_code_does(
    client, admin, storefront
):
    disabled = issue(client, admin, amount=500)
    client.post(f"/v1/gift-cards/{disabled['id']}/disable", json={}, headers=admin)
    live = issue(client, admin, amount=500)
    shopper = "192.0.2.50"
    for i in range(9):
        made = hold(client, storefront, disabled["code"], 10, order_id=f"o{i}", ip=shopper)
        assert made.status_code == 404
    assert hold(client, storefront, wrong_code(), 10, ip=shopper).status_code == 404  # tenth
    assert_locked_out(shopper_lookup(client, storefront, live["code"], shopper))


def test_a_locked_out_shopper_does_not_lock_out_other_shoppers_of_the_same_store(
    client, admin, storefront
):
    gc = issue(client, admin, amount=1234)
    server = "10.20.0.1"  # the storefront's server, in front of every shopper
    for _ in range(10):
        assert miss(client, storefront, "203.0.113.5", server) == 404
    assert_locked_out(shopper_lookup(client, storefront, gc["code"], "203.0.113.5", server))
    # The same shopper under another spelling of the address is the same shopper.
    assert_locked_out(shopper_lookup(client, storefront, gc["code"], "::ffff:203.0.113.5", server))
    ok = shopper_lookup(client, storefront, gc["code"], "203.0.113.6", server)
    assert ok.status_code == 200, ok.get_json()
    assert lookup(client, storefront, gc["code"], ip=server).status_code == 200


def test_one_ipv6_subscriber_is_one_shopper(client, admin, storefront):
    gc = issue(client, admin, amount=1234)
    for n in range(10):  # a fresh address of the same /64 each time
        assert miss(client, storefront, f"2001:db8:1:2::{n + 1:x}") == 404
    assert_locked_out(shopper_lookup(client, storefront, gc["code"], "2001:db8:1:2::ffff"))
    assert shopper_lookup(client, storefront, gc["code"], "2001:db8:1:3::1").status_code == 200


@pytest.mark.parametrize("ip", ["203.0.113.5:443", "203.0.113.09", "shop.example", ""])
def test_a_forwarded_address_that_is_not_one_is_refused(client, storefront, ip):
    response = shopper_lookup(client, storefront, wrong_code(), ip)
    assert response.status_code == 422
    assert "Not a valid IP address" in " ".join(response.get_json()["errors"]["ip"])


def test_the_api_key_has_a_far_higher_store_wide_failure_ceiling(
    client, admin, storefront, session, app, monkeypatch
):
    monkeypatch.setitem(app.config, "GIFT_CARD_KEY_MAX_FAILURES", 5)
    gc = issue(client, admin, amount=1234)
    for n in range(5):  # a guesser spread over many addresses
        assert miss(client, storefront, f"198.18.0.{n + 1}") == 404
    assert_locked_out(shopper_lookup(client, storefront, gc["code"], "198.18.1.1"))
    assert_locked_out(hold(client, storefront, gc["code"], 10, ip="198.18.1.2"))
    _row, other_key = create_api_key(session, "another-store", ["storefront"])
    session.commit()
    assert shopper_lookup(client, bearer(other_key), gc["code"], "198.18.1.1").status_code == 200


def test_the_api_key_has_its_own_allowance_a_minute(client, admin, storefront, app, monkeypatch):
    monkeypatch.setitem(app.config, "GIFT_CARD_KEY_LOOKUPS_PER_MINUTE", 4)
    cards = [issue(client, admin, amount=100)["code"] for _ in range(5)]
    statuses = [
        shopper_lookup(client, storefront, code, f"198.18.2.{n + 1}").status_code
        for n, code in enumerate(cards)
    ]
    assert statuses == [200, 200, 200, 200, 429]


def test_the_lockout_ends_after_fifteen_minutes(app, session, monkeypatch):
    """Through the service with a moving clock: failures age out, the lock lifts; the job
    forgets what no longer counts."""
    clock = [datetime(2026, 12, 6, 12, tzinfo=UTC).timestamp()]
    counters = ratelimit.Counters(app.config, clock=lambda: clock[0])
    monkeypatch.setitem(app.extensions, "loyalty.ratelimit", counters)

    def attempt(code: str):
        guard = throttle.CodeGuard(app.config, code, SECRETS, shopper="10.9.9.9", api_key="k1")
        return service.lookup(session, guard, code, SECRETS, datetime.fromtimestamp(clock[0], UTC))

    for _ in range(10):
        with pytest.raises(NotFound):
            attempt(wrong_code())
    with pytest.raises(RateLimited) as locked:
        attempt(wrong_code())
    assert locked.value.retry_after == 15 * 60
    clock[0] += 15 * 60 - 1
    with pytest.raises(RateLimited) as still:
        attempt(wrong_code())
    assert still.value.retry_after == 1
    clock[0] += 2
    with pytest.raises(NotFound):  # unlocked: answered (and counted) again
        attempt(wrong_code())
    stored = session.scalar(select(func.count()).select_from(RateLimitEntry))
    removed = purge_rate_limits(session, datetime.fromtimestamp(clock[0], UTC), 100)
    assert removed > 0
    assert session.scalar(select(func.count()).select_from(RateLimitEntry)) == stored - removed
    # What is left is the last attempt's, and it still counts.
    gone = purge_rate_limits(session, datetime.fromtimestamp(clock[0] + 15 * 60 + 1, UTC), 100)
    assert gone == stored - removed


def test_lockout_is_shared_by_separate_app_instances(pg_app, pg_keys):
    """Two app instances (as two gunicorn workers would be) on one database share the count."""
    other_instance = make_app(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    first, second = pg_app.test_client(), other_instance.test_client()
    storefront = pg_keys["storefront"]
    for _ in range(5):
        assert lookup(first, storefront, wrong_code(), ip="10.5.5.5").status_code == 404
    for _ in range(5):
        assert hold(second, storefront, wrong_code(), 10, ip="10.5.5.5").status_code == 404
    assert_locked_out(lookup(first, storefront, wrong_code(), ip="10.5.5.5"))
    assert_locked_out(lookup(second, storefront, wrong_code(), ip="10.5.5.5"))
    with other_instance.app_context():
        db.engine.dispose()


@pytest.fixture
def redis_prefix(request):
    """A key prefix of this test's own in the shared Redis; its keys are deleted after."""
    store = redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        store.ping()
    except redis_lib.RedisError:
        service_missing(request.config, f"Redis not reachable at {REDIS_URL}")
    prefix = f"test-giftcards-{uuid.uuid4().hex}"
    yield prefix
    for key in store.scan_iter(f"{prefix}:*"):
        store.delete(key)
    store.close()


def test_with_redis_two_app_instances_share_the_counts_and_the_database_keeps_none(
    pg_app, pg_keys, redis_prefix
):
    config = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": redis_prefix}
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    instances = make_app(url, **config), make_app(url, **config)
    one, two = (instance.test_client() for instance in instances)
    storefront = pg_keys["storefront"]
    for _ in range(5):
        assert lookup(one, storefront, wrong_code(), ip="10.8.8.8").status_code == 404
        assert hold(two, storefront, wrong_code(), 10, ip="10.8.8.8").status_code == 404
    assert_locked_out(lookup(one, storefront, wrong_code(), ip="10.8.8.8"))
    assert_locked_out(lookup(two, storefront, wrong_code(), ip="10.8.8.8"))
    assert lookup(two, storefront, wrong_code(), ip="10.8.8.9").status_code == 404
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RateLimitEntry)) == 0
    for instance in instances:
        with instance.app_context():
            db.engine.dispose()
