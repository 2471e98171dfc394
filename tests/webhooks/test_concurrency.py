"""Two workers delivering at once on PostgreSQL never send the same delivery twice; a failed
delivery sent again by several requests at once is rescheduled once."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loyalty.audit import AuditLog
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


def test_sending_a_failed_delivery_again_from_many_requests_at_once_schedules_it_once(
    pg_app, pg_keys
):
    """The delivery is locked while it is rescheduled: one request changes it (one audit row),
    the others find it pending and answer it as it is."""
    client = pg_app.test_client()
    response = client.post("/v1/webhook-endpoints", headers=pg_keys["admin"],
                           json={"url": "https://hooks.example.com/in",
                                 "events": ["points.earned"]})  # fmt: skip
    assert response.status_code == 201
    with pg_app.app_context():
        emit_many(db.session, "points.earned", [{"n": 1}])
        db.session.commit()
        delivery_id = db.session.scalar(select(WebhookDelivery.id))
        db.session.execute(
            WebhookDelivery.__table__.update().values(gave_up_at=utcnow(), attempts=12)
        )
        db.session.commit()
    start = threading.Barrier(4)
    answers = []

    def send_again():
        start.wait()
        answer = pg_app.test_client().post(
            f"/v1/webhook-deliveries/{delivery_id}/retry", headers=pg_keys["admin"]
        )
        answers.append((answer.status_code, answer.get_json()["status"]))

    threads = [threading.Thread(target=send_again) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [(200, "pending")] * 4
    with pg_app.app_context():
        retried = select(func.count()).where(AuditLog.action == "webhook_delivery.retry")
        assert db.session.scalar(retried) == 1
