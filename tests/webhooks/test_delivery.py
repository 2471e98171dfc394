"""The deliver-webhooks job against a real local receiver: Standard Webhooks signatures the
official library accepts, retries with backoff, giving up, and deleted endpoints."""

from datetime import timedelta

import pytest
from sqlalchemy import update
from standardwebhooks import WebhookVerificationError

from loyalty.extensions import db
from loyalty.types import utcnow
from loyalty.webhooks.models import WebhookDelivery, WebhookMessage
from tests import factories as f
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import (
    count_deliveries,
    create_endpoint,
    deliveries,
    messages,
    run_job,
)
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def test_a_delivery_is_signed_sent_once_and_recorded(client, admin, storefront, runner, receiver):
    endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
    event = f.paid("c_d", lines=[f.line(unit_price=7000)])
    post_event(client, storefront, event)
    [message] = messages()
    now = utcnow() + timedelta(seconds=1)

    assert "deliver-webhooks: 1 changed" in run_job(runner, "deliver-webhooks", now)
    [request] = receiver.requests
    payload = request.verified(endpoint["secret"])  # the official library checks it
    assert payload["type"] == "points.earned"
    assert payload["data"]["order_id"] == event["order"]["id"]
    assert payload["data"]["points"] == 70
    assert payload["timestamp"] == message.created_at.isoformat()
    assert request.id == f"msg_{message.id}"
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - utcnow().timestamp()) < 60
    with pytest.raises(WebhookVerificationError, match="signature"):
        request.verified("whsec_" + "A" * 32)  # another endpoint's secret does not verify

    [delivery] = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered", 1, 200,
    )  # fmt: skip
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None
    assert "0 changed" in run_job(runner, "deliver-webhooks", now + timedelta(hours=1))
    assert len(receiver.requests) == 1


def test_every_subscribed_endpoint_gets_its_own_signature(client, admin, storefront, runner):
    with Receiver() as one, Receiver() as two:
        first = create_endpoint(client, admin, one.url, ["points.earned"])
        second = create_endpoint(client, admin, two.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_two"))
        run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
        [a], [b] = one.requests, two.requests
    assert a.id == b.id and a.body == b.body
    assert a.verified(first["secret"]) == b.verified(second["secret"])
    with pytest.raises(WebhookVerificationError, match="signature"):
        a.verified(second["secret"])


def test_a_failed_attempt_is_retried_with_backoff_under_the_same_id(
    client, admin, storefront, runner
):
    with Receiver(statuses=[500, 503]) as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_retry"))
        t0 = utcnow() + timedelta(seconds=1)
        assert "0 changed" in run_job(runner, "deliver-webhooks", t0)
        [delivery] = deliveries(client, admin, endpoint["id"])
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
            "pending", 1, 500,
        )  # fmt: skip
        assert delivery["last_error"] == "HTTP 500"
        # 30 s after the first attempt, then 60 s after the second.
        run_job(runner, "deliver-webhooks", t0 + timedelta(seconds=29))
        assert len(receiver.requests) == 1
        run_job(runner, "deliver-webhooks", t0 + timedelta(seconds=30))
        assert len(receiver.requests) == 2
        run_job(runner, "deliver-webhooks", t0 + timedelta(seconds=89))
        assert len(receiver.requests) == 2
        assert "1 changed" in run_job(runner, "deliver-webhooks", t0 + timedelta(seconds=90))
        requests = list(receiver.requests)
    assert len(requests) == 3
    assert len({r.id for r in requests}) == 1  # the same message every time
    for request in requests:
        assert request.verified(endpoint["secret"])["type"] == "points.earned"
    [delivery] = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered", 3, 200,
    )  # fmt: skip
    assert delivery["last_error"] is None


def test_a_delivery_is_given_up_after_the_last_attempt(
    client, admin, storefront, runner, app, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 3)
    with Receiver(statuses=[500] * 10) as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_down"))
        now = utcnow() + timedelta(seconds=1)
        for _ in range(5):
            run_job(runner, "deliver-webhooks", now)
            now += timedelta(hours=1)
        sent = len(receiver.requests)
    assert sent == 3
    [delivery] = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "failed", 3, 500,
    )  # fmt: skip
    assert delivery["gave_up_at"] is not None and delivery["next_attempt_at"] is None


def test_an_unreachable_endpoint_records_the_error(client, admin, storefront, runner):
    with Receiver() as closed:
        url = closed.url  # a port nothing listens on once it is closed
    endpoint = create_endpoint(client, admin, url, ["points.earned"])
    post_event(client, storefront, f.paid("c_gone"))
    run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
    [delivery] = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "pending", 1, None,
    )  # fmt: skip
    assert "refused" in delivery["last_error"].lower()


def test_deleting_an_endpoint_stops_its_deliveries(client, admin, storefront, runner):
    with Receiver(statuses=[500]) as dropped, Receiver() as kept:
        gone = create_endpoint(client, admin, dropped.url, ["points.earned"])
        stays = create_endpoint(client, admin, kept.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_del"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)  # `gone` fails once and waits for a retry
        response = client.delete(f"/v1/webhook-endpoints/{gone['id']}", headers=admin)
        assert response.status_code == 204
        post_event(client, storefront, f.paid("c_del"))  # after the delete: not for `gone`
        run_job(runner, "deliver-webhooks", t0 + timedelta(hours=1))
        assert len(dropped.requests) == 1
        assert len(kept.requests) == 2
    assert deliveries(client, admin, gone["id"]) == []  # its undelivered messages are dropped
    assert [d["status"] for d in deliveries(client, admin, stays["id"])] == ["delivered"] * 2


def test_run_due_sends_what_the_jobs_before_it_reported(client, admin, storefront, runner):
    response = client.put(
        "/v1/program", json={"pending_days": 0, "expiry_inactive_days": 30}, headers=admin
    )
    assert response.status_code == 200
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.expiring"])
        post_event(client, storefront, f.paid("c_due", occurred_at=utcnow() - timedelta(days=25)))
        output = run_job(runner, "run-due")
        assert "deliver-webhooks: 1 changed" in output
        [request] = receiver.requests
    payload = request.verified(endpoint["secret"])
    assert (payload["type"], payload["data"]["customer_id"]) == ("points.expiring", "c_due")


def test_purge_forgets_finished_deliveries_and_their_messages_after_the_retention(
    client, admin, storefront, runner, app, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 1)
    with Receiver(statuses=[500]) as failing, Receiver() as working:
        create_endpoint(client, admin, failing.url, ["points.earned"])  # gives up at once
        create_endpoint(client, admin, working.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_old"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)
    # A newer message, still waiting for an endpoint that is down.
    with Receiver() as later:
        create_endpoint(client, admin, later.url, ["tier.changed"])
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 12)
    post_event(client, storefront, f.paid("c_new"))
    db.session.rollback()
    assert len(messages()) == 2 and count_deliveries() == 4  # 2 + 2 (points.earned x2 endpoints)

    # Within the retention nothing goes, whatever its state.
    assert "purge-webhooks: 0 changed" in run_job(runner, "purge-webhooks", t0 + timedelta(days=29))
    # After it: the first message's two finished deliveries and the message itself.
    later_now = t0 + timedelta(days=31)
    output = run_job(runner, "purge-webhooks", later_now)
    db.session.rollback()
    remaining = messages()
    assert [m.data["customer_id"] for m in remaining] == ["c_new"]
    assert count_deliveries() == 2  # c_new's: not finished, kept however old
    assert "purge-webhooks: 3 changed" in output
    # A message with an unfinished delivery is kept; once it is done, the next purge takes it.
    db.session.execute(update(WebhookDelivery).values(delivered_at=later_now))
    db.session.commit()
    assert "purge-webhooks: 3 changed" in run_job(runner, "purge-webhooks", later_now)
    db.session.rollback()
    assert messages() == [] and count_deliveries() == 0


def test_purge_keeps_expiry_warnings_while_they_still_prevent_a_repeat(
    client, admin, runner, app, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_RETENTION_DAYS", 1)
    monkeypatch.setitem(app.config, "POINTS_EXPIRY_WARNING_DAYS", 7)
    create_endpoint(client, admin, "http://127.0.0.1:9/hook", ["points.earned"])
    now = utcnow()
    db.session.add(WebhookMessage(type="points.expiring", data={}, dedupe_key="k", created_at=now))
    db.session.commit()
    assert "0 changed" in run_job(runner, "purge-webhooks", now + timedelta(days=7, hours=23))
    assert "1 changed" in run_job(runner, "purge-webhooks", now + timedelta(days=8, hours=1))
