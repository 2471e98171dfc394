"""The per-worker config cache (loyalty/cache.py): a worker sees its own changes at once
(other workers too: tests/test_config_version.py); nothing is cached from a transaction that
wrote the cached rows and then rolled back.
"""

from loyalty import cache
from loyalty.auth import create_api_key
from tests.conftest import bearer


def test_revoked_key_is_refused_at_once_by_the_same_worker(runner, client, keys):
    made = runner.invoke(args=["api-keys", "create", "--name", "ops", "--scope", "admin"])
    key = made.output.strip().splitlines()[-1]
    assert client.get("/v1/program", headers=bearer(key)).status_code == 200  # now cached
    key_id = made.output.split()[3]
    listed = runner.invoke(args=["api-keys", "list"])
    assert f"{key_id}\t{key[:10]}…\tops\tadmin\t" in listed.output and "active" in listed.output

    revoked = runner.invoke(args=["api-keys", "revoke", key_id])

    assert revoked.exit_code == 0, revoked.output
    assert client.get("/v1/program", headers=bearer(key)).status_code == 401
    assert "revoked" in runner.invoke(args=["api-keys", "list"]).output
    assert runner.invoke(args=["api-keys", "revoke", "999999"]).exit_code != 0


def test_nothing_is_cached_from_a_transaction_that_rolls_back(app, session):
    """A key created in a transaction that rolls back must not be remembered as valid."""
    calls = []

    def load():
        calls.append(1)
        return ("1", ("admin",))

    _row, key = create_api_key(session, "ghost", ["admin"])  # flushed: the transaction wrote
    assert cache.cached(session, "api_keys", "k", load) == ("1", ("admin",))
    assert cache.cached(session, "api_keys", "k", load) == ("1", ("admin",))
    assert len(calls) == 2  # not cached while this transaction has written api keys
    session.rollback()

    client = app.test_client()
    assert client.get("/v1/program", headers=bearer(key)).status_code == 401
    assert cache.cached(session, "api_keys", "k", load) == ("1", ("admin",))
    assert cache.cached(session, "api_keys", "k", load) == ("1", ("admin",))
    assert len(calls) == 3  # after the rollback, caching works again


def test_unknown_keys_are_not_cached(app, client, session):
    """Answers of "no such key" take no room: a flood of random keys cannot grow the cache."""
    for n in range(5):
        assert client.get("/v1/program", headers=bearer(f"lk_nope{n}")).status_code == 401
    store = cache.caches()
    assert store.get("api_keys", "anything", store.version) is cache._MISSING
    assert not cache.caches()._data.get("api_keys")
