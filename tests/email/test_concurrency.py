"""Real commits from several connections on PostgreSQL: workers sending the email outbox at
once send each message once; concurrent captures report a card's low balance once."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from loyalty.email.models import EmailMessage
from loyalty.email.sending import send_emails
from loyalty.extensions import db
from loyalty.webhooks.models import WebhookMessage
from tests.email.smtp import SMTPServer, mail_channel
from tests.giftcards.helpers import issue
from tests.giftcards.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_workers_sending_at_once_send_each_message_once(pg_app, pg_keys):
    server = SMTPServer().start()
    try:
        with mail_channel(pg_app, server.port):
            pg_app.config["EMAIL_BATCH_SIZE"] = 3  # many small claims, interleaved
            client = pg_app.test_client()
            for i in range(24):
                member = {"id": f"c_{i}", "email": f"m{i}@example.com"}
                response = client.post("/v1/members", headers=pg_keys["admin"], json=member)
                assert response.status_code == 201
            later = datetime.now(UTC) + timedelta(seconds=1)

            def work(_i):
                with pg_app.app_context():
                    try:
                        return send_emails(db.session, later, 500)
                    finally:
                        db.session.remove()

            sent = run_together(4, work)
    finally:
        server.stop()
        pg_app.config["EMAIL_BATCH_SIZE"] = 50
    assert sum(sent) == 24
    received = Counter(a.envelope_to[0] for a in server.arrived)
    assert received == Counter(f"m{i}@example.com" for i in range(24))
    with pg_app.app_context():
        unsent = select(func.count()).where(EmailMessage.sent_at.is_(None))
        assert db.session.scalar(unsent) == 0


def test_concurrent_captures_report_one_low_balance(pg_app, pg_keys):
    pg_app.config["GIFT_CARD_LOOKUPS_PER_MINUTE"] = 100
    client = pg_app.test_client()
    created = client.post("/v1/webhook-endpoints", headers=pg_keys["admin"], json={
        "url": "https://hooks.example.com/x",
        "events": ["gift_card.low_balance", "gift_card.redeemed"]})  # fmt: skip
    assert created.status_code == 201
    card = issue(client, pg_keys["admin"], amount=5000)
    holds = []
    for i in range(10):  # 4500 held: 500 left, below the 1000 threshold
        body = {"code": card["code"], "amount": 450, "order_id": f"o{i}"}
        response = client.post("/v1/gift-cards/holds", headers=pg_keys["storefront"], json=body)
        assert response.status_code == 201, response.get_json()
        holds.append(response.get_json()["id"])

    def capture(i):
        return (
            pg_app.test_client()
            .post(f"/v1/gift-card-holds/{holds[i]}/capture", headers=pg_keys["storefront"])
            .status_code
        )

    assert run_together(10, capture) == [200] * 10
    with pg_app.app_context():
        types = Counter(db.session.scalars(select(WebhookMessage.type)))
        [low] = db.session.scalars(
            select(WebhookMessage.data).where(WebhookMessage.type == "gift_card.low_balance")
        )
    assert types == {"gift_card.redeemed": 10, "gift_card.low_balance": 1}
    assert (low["balance"], low["threshold"]) == (500, 1000)
