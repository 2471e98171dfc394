"""Several `sync-store-codes` workers at once (PostgreSQL, real commits): each task is sent once."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.discounts import PlatformCodeTask, sync_store_codes
from loyalty.extensions import db
from tests.connectors.fake_platforms import SHOPIFY_TOKEN, FakeShopify
from tests.rewards.helpers import make_member, make_reward, redeem

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_concurrent_workers_create_each_discount_exactly_once(pg_app, pg_keys):
    with FakeShopify() as shopify:
        shopify.delay = 0.05
        pg_app.config.update(
            SHOPIFY_SHOP="example.myshopify.com",
            SHOPIFY_ADMIN_TOKEN=SHOPIFY_TOKEN,
            SHOPIFY_API_BASE=shopify.url,
            STORE_CODES_BATCH_SIZE=2,
        )
        client = pg_app.test_client()
        make_member(client, pg_keys["admin"], "c_1", points=100_000)
        reward = make_reward(client, pg_keys["admin"], points_cost=100)
        codes = [
            redeem(client, pg_keys["storefront"], "c_1", reward["id"]).get_json()["code"]
            for _ in range(12)
        ]
        now = datetime.now(UTC) + timedelta(seconds=1)

        def worker(_):
            with pg_app.app_context():
                return sync_store_codes(db.session, now, 0)

        with ThreadPoolExecutor(max_workers=4) as pool:
            created = list(pool.map(worker, range(4)))
        assert sum(created) == 12
        assert sum(1 for n in created if n) > 1  # the workers really shared the work
        sent = Counter(
            r["json"]["variables"]["basicCodeDiscount"]["code"] for r in shopify.requests
        )
        assert sent == Counter(codes)  # every code once, none twice
        with pg_app.app_context():
            statuses = db.session.scalars(select(PlatformCodeTask.status)).all()
            assert statuses == ["done"] * 12
