"""A configuration change is in force in every worker as soon as the request that made it has
answered (loyalty/cache.py): two apps on one PostgreSQL database are two workers, each with
its own cache kept for 300 s, so no expiry can be what makes these pass.
"""

import psycopg
import pytest
from sqlalchemy import text

from loyalty import cache
from loyalty.extensions import db
from tests import factories as f
from tests.conftest import PG_ADMIN_URL, bearer, make_app
from tests.statements import recorded

LONG = 300  # seconds: far longer than any test


@pytest.fixture
def workers(pg_app, pg_keys):
    """(A, B): two more apps on pg_app's database, with long-lived caches."""
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    apps = [make_app(url, CONFIG_CACHE_SECONDS=LONG) for _ in range(2)]
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def skincare_basket(customer_id):
    return f.paid(customer_id, lines=[f.line("SERUM", unit_price=10_000, category="skincare")])


def post_event(app, headers, event):
    response = app.test_client().post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def kinds(body):
    return [effect["kind"] for effect in body["effects"]]


def test_an_earning_rule_made_on_one_worker_applies_to_the_next_order_on_another(workers, pg_keys):
    a, b = workers
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    # B has read (and cached) the key, the program and the rules: none yet.
    assert kinds(post_event(b, storefront, skincare_basket("c_1"))) == ["earn"]

    rule = {"name": "2× skincare", "trigger": "order", "multiplier": "2",
            "conditions": {"categories": ["skincare"]}}  # fmt: skip
    made = a.test_client().post("/v1/earning-rules", json=rule, headers=admin)
    assert made.status_code == 201

    body = post_event(b, storefront, skincare_basket("c_2"))
    assert kinds(body) == ["earn", "bonus"]
    assert body["effects"][1]["points"] == body["effects"][0]["points"]

    # Turned off on A: B's next order earns without it.
    rule_id = made.get_json()["id"]
    off = a.test_client().patch(f"/v1/earning-rules/{rule_id}", json={"active": False},
                                headers=admin)  # fmt: skip
    assert off.status_code == 200
    assert kinds(post_event(b, storefront, skincare_basket("c_3"))) == ["earn"]
    # B ran its first event after each change twice (the first run on stale settings, rolled
    # back): each event still has exactly one order and its entries.
    with b.app_context():
        orders = db.session.scalar(text("SELECT count(*) FROM orders"))
        entries = db.session.scalar(text("SELECT count(*) FROM ledger_entries"))
    assert (orders, entries) == (3, 4)


def test_a_program_change_on_one_worker_is_in_force_on_another(workers, pg_keys):
    a, b = workers
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    before = post_event(b, storefront, skincare_basket("c_1"))["effects"][0]["points"]

    changed = a.test_client().put("/v1/program", json={"points_per_unit": "3"}, headers=admin)
    assert changed.status_code == 200

    assert post_event(b, storefront, skincare_basket("c_2"))["effects"][0]["points"] == 3 * before
    # Read paths too: the program as B shows it.
    assert b.test_client().get("/v1/program", headers=admin).get_json()["points_per_unit"] == "3"


def test_a_revoked_api_key_is_refused_at_once_by_every_worker(workers, pg_app, pg_keys):
    a, b = workers
    with pg_app.app_context():
        made = pg_app.test_cli_runner().invoke(
            args=["api-keys", "create", "--name", "shop", "--scope", "storefront"]
        )
    key_id, key = made.output.split()[3], made.output.strip().splitlines()[-1]
    headers = bearer(key)
    post_event(b, headers, f.paid("c_1"))
    assert b.test_client().get("/v1/members/c_1", headers=headers).status_code == 200
    assert b.test_client().get("/v1/members/nobody", headers=headers).status_code == 404

    with a.app_context():
        revoked = a.test_cli_runner().invoke(args=["api-keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output

    client = b.test_client()
    # The hot paths (checked in the statement they make anyway) and a 404 on one of them.
    assert client.get("/v1/members/c_1", headers=headers).status_code == 401
    assert client.get("/v1/members/nobody", headers=headers).status_code == 401
    assert client.post("/v1/events", json=f.paid("c_1"), headers=headers).status_code == 401
    assert client.get("/v1/tiers", headers=headers).status_code == 401


def test_a_key_revoked_by_hand_in_the_database_is_refused_at_once(workers, pg_app, pg_keys):
    """The stamp is moved by triggers: even an UPDATE typed into psql counts."""
    _a, b = workers
    storefront = pg_keys["storefront"]
    assert b.test_client().get("/v1/members/nobody", headers=storefront).status_code == 404
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'test-storefront'")
    assert b.test_client().get("/v1/members/nobody", headers=storefront).status_code == 401


def test_a_webhook_endpoint_added_on_one_worker_gets_the_next_event_on_another(workers, pg_keys):
    a, b = workers
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    post_event(b, storefront, f.paid("c_1"))  # B has cached "nobody listens"
    endpoint = {"url": "http://127.0.0.1:9/hook", "events": ["points.earned"]}
    assert (
        a.test_client().post("/v1/webhook-endpoints", json=endpoint, headers=admin).status_code
        == 201
    )

    post_event(b, storefront, f.paid("c_1"))

    with b.app_context():
        count = db.session.scalar(text("SELECT count(*) FROM webhook_deliveries"))
    assert count == 1


def test_tier_and_reward_changes_on_one_worker_are_in_force_on_another(workers, pg_keys):
    a, b = workers
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    base = post_event(b, storefront, f.paid("c_1"))["effects"][0]["points"]
    tiers = a.test_client().get("/v1/tiers", headers=admin).get_json()["items"]
    base_tier = next(t for t in tiers if t["threshold"] == 0)
    changed = a.test_client().patch(f"/v1/tiers/{base_tier['id']}", json={"multiplier": "2"},
                                    headers=admin)  # fmt: skip
    assert changed.status_code == 200, changed.get_json()
    assert post_event(b, storefront, f.paid("c_1"))["effects"][0]["points"] == 2 * base

    reward = {"name": "10 off", "kind": "amount_off", "amount": 1000, "points_cost": 1}
    made = a.test_client().post("/v1/rewards", json=reward, headers=admin)
    assert made.status_code == 201, made.get_json()
    listed = b.test_client().get("/v1/rewards", headers=admin).get_json()["items"]
    assert made.get_json()["id"] in [r["id"] for r in listed]


def test_the_hot_paths_read_the_stamp_in_the_statement_they_make_anyway(workers, pg_keys):
    """A warm member read is still one statement, and it carries the stamp; after a change
    elsewhere the first read runs again (two statements), the next is back to one."""
    a, b = workers
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    post_event(b, storefront, f.paid("c_1"))
    with b.app_context():
        client = b.test_client()
        with recorded() as sent:
            assert client.get("/v1/members/c_1", headers=storefront).status_code == 200
        assert len(sent) == 1 and "config_version" in sent[0]

        rule = {"name": "Later", "trigger": "order", "points": 5}
        assert (
            a.test_client().post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
        )
        with recorded() as sent:
            assert client.get("/v1/members/c_1", headers=storefront).status_code == 200
        # the view (stale), then the key (reloaded) and the view again
        assert len(sent) == 3
        with recorded() as sent:
            assert client.get("/v1/members/c_1", headers=storefront).status_code == 200
        assert len(sent) == 1


def test_every_cached_table_moves_the_stamp(app, session):
    """Each table a cache watches has the triggers of migration 0014 (a later migration that
    rebuilds one on SQLite would drop them)."""
    tables = {model.__tablename__ for model in cache._WATCHED}
    assert tables == {
        "program",
        "earning_rules",
        "earning_rule_tiers",
        "api_keys",
        "webhook_endpoints",
    }
    connection = session.connection()
    for table in sorted(tables):
        if connection.dialect.name == "postgresql":
            found = connection.scalar(
                text("SELECT count(*) FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                     "AND tgname = 'config_changed'"), {"t": table}
            )  # fmt: skip
            assert found == 1, table
        else:
            found = connection.scalar(
                text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                     "AND tbl_name = :t AND name LIKE 'config_changed_%'"), {"t": table}
            )  # fmt: skip
            assert found == 3, table
    before = connection.scalar(text("SELECT version FROM config_version"))
    connection.execute(text("UPDATE program SET pending_days = pending_days"))
    assert connection.scalar(text("SELECT version FROM config_version")) != before
