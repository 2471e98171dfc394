"""Two workers delivering at once on PostgreSQL never send the same delivery twice."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.types import utcnow
from loyalty.webhooks import emit_many
from loyalty.webhooks.delivery import deliver_webhooks
from loyalty.webhooks.models import WebhookDelivery
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_two_concurrent_deliver_runs_send_each_message_once(pg_app, pg_keys):
    pg_app.config.update(WEBHOOK_BATCH_SIZE=4)
    messages = 40
    with Receiver(delay=0.01) as receiver:
        response = pg_app.test_client().post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "events": ["points.earned"]},
            headers=pg_keys["admin"],
        )
        assert response.status_code == 201
        with pg_app.app_context():
            emit_many(db.session, "points.earned", [{"n": n} for n in range(messages)])
            db.session.commit()
        now = utcnow() + timedelta(seconds=1)
        start = threading.Barrier(2)
        delivered = []

        def worker():
            with pg_app.app_context():
                start.wait()
                delivered.append(deliver_webhooks(db.session, now, 1000))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = receiver.ids()

    assert len(ids) == messages
    assert Counter(ids).most_common(1)[0][1] == 1  # nobody received twice
    assert sum(delivered) == messages
    with pg_app.app_context():
        done = select(func.count()).where(WebhookDelivery.delivered_at.is_not(None))
        assert db.session.scalar(done) == messages
        attempts = db.session.scalar(select(func.sum(WebhookDelivery.attempts)))
        assert attempts == messages  # every delivery was claimed by exactly one worker
