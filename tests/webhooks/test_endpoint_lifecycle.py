"""An endpoint's life after creation: rotating its signing secret (the old one signs beside the
new one during the overlap), disabling and enabling it, and sending a failed delivery again —
against a real receiver on loopback, checked with the official Standard Webhooks library."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import WebhookVerificationError

from loyalty.audit import AuditLog
from loyalty.types import utcnow
from tests import factories as f
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import count_deliveries, create_endpoint, deliveries, run_job
from tests.webhooks.receiver import Receiver

DAY = timedelta(days=1)


def _post(client, headers, path, body=None, **kwargs):
    return client.post(path, json=body, headers={**headers, **kwargs.pop("extra", {})}, **kwargs)


def _audit(session, action):
    return session.scalars(
        select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


# --- rotating the secret ----------------------------------------------------------------------


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(
    client, admin, storefront, runner, session
):
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        old = endpoint["secret"]
        response = _post(client, admin, f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        assert response.status_code == 200, response.get_json()
        rotated = response.get_json()
        new = rotated["secret"]
        assert new.startswith("whsec_") and new != old
        assert rotated["id"] == endpoint["id"] and rotated["status"] == "enabled"
        expires = rotated["previous_secret_expires_at"]
        assert expires is not None
        # The new secret is never shown again.
        shown = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin).get_json()
        assert "secret" not in shown and shown["previous_secret_expires_at"] == expires

        post_event(client, storefront, f.paid("c_rot"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)
        # After the overlap (24 h by default) only the new secret signs.
        post_event(client, storefront, f.paid("c_rot"))
        run_job(runner, "deliver-webhooks", t0 + DAY + timedelta(seconds=1))
        during, after = receiver.requests

    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verified(new)["data"]["customer_id"] == "c_rot"
    assert during.verified(old)["data"]["customer_id"] == "c_rot"  # receivers not yet switched
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert after.verified(new)["type"] == "points.earned"
    with pytest.raises(WebhookVerificationError):
        after.verified(old)

    [row] = _audit(session, "webhook_endpoint.rotate_secret")
    assert row.object_id == str(endpoint["id"])
    assert row.before["previous_secret_expires_at"] is None
    assert row.after["previous_secret_expires_at"] == expires
    assert old not in str(row.after) and new not in str(row.after)


def test_a_rotation_without_overlap_stops_the_old_secret_at_once(client, admin, storefront, runner):
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
        response = _post(client, admin, path, {"overlap_seconds": 0})
        assert response.status_code == 200
        assert response.get_json()["previous_secret_expires_at"] is None
        new = response.get_json()["secret"]
        post_event(client, storefront, f.paid("c_leak"))
        run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
        [request] = receiver.requests
    assert request.verified(new)["type"] == "points.earned"
    with pytest.raises(WebhookVerificationError):
        request.verified(endpoint["secret"])


def test_a_second_rotation_keeps_only_the_secret_it_replaces(client, admin, storefront, runner):
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
        second = _post(client, admin, path).get_json()["secret"]
        third = _post(client, admin, path).get_json()["secret"]
        post_event(client, storefront, f.paid("c_twice"))
        run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
        [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verified(third) and request.verified(second)
    with pytest.raises(WebhookVerificationError):
        request.verified(endpoint["secret"])


def test_a_rotation_sent_again_with_its_key_rotates_once(client, admin, session):
    endpoint = create_endpoint(client, admin, "https://hooks.example.com/in", ["tier.changed"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    first = _post(client, admin, path, extra={"Idempotency-Key": "rotate-1"})
    again = _post(client, admin, path, extra={"Idempotency-Key": "rotate-1"})
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert len(_audit(session, "webhook_endpoint.rotate_secret")) == 1


@pytest.mark.parametrize("body", [{"overlap_seconds": -1}, {"overlap_seconds": 8 * 86400},
                                  {"overlap_seconds": "60"}, {"grace": 60}])  # fmt: skip
def test_a_rotation_with_a_bad_overlap_is_refused(client, admin, body):
    endpoint = create_endpoint(client, admin, "https://hooks.example.com/in", ["tier.changed"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    response = _post(client, admin, path, body)
    assert (response.status_code, response.get_json()["type"]) == (422, "validation-error")


# --- disabling --------------------------------------------------------------------------------


def test_a_disabled_endpoint_gets_nothing_until_enabled(client, admin, storefront, runner, session):
    with Receiver(statuses=[500]) as paused, Receiver() as other:
        endpoint = create_endpoint(client, admin, paused.url, ["points.earned"])
        create_endpoint(client, admin, other.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_pause"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)  # fails once: a retry is due 30 s later
        assert len(paused.requests) == 1

        response = _post(client, admin, f"/v1/webhook-endpoints/{endpoint['id']}/disable")
        assert response.status_code == 200
        assert response.get_json()["status"] == "disabled"
        assert response.get_json()["disabled_at"] is not None
        before = count_deliveries()
        post_event(client, storefront, f.paid("c_pause"))  # not queued for the disabled one
        assert count_deliveries() == before + 1
        run_job(runner, "deliver-webhooks", t0 + timedelta(hours=1))
        assert len(paused.requests) == 1  # the retry waits
        assert len(other.requests) == 2
        [waiting] = deliveries(client, admin, endpoint["id"])
        assert (waiting["status"], waiting["attempts"]) == ("pending", 1)

        listed = client.get("/v1/webhook-endpoints", headers=admin).get_json()["items"]
        assert [e["status"] for e in listed] == ["disabled", "enabled"]

        response = _post(client, admin, f"/v1/webhook-endpoints/{endpoint['id']}/enable")
        assert (response.status_code, response.get_json()["status"]) == (200, "enabled")
        run_job(runner, "deliver-webhooks", t0 + timedelta(hours=2))
        assert len(paused.requests) == 2  # the waiting one, not the event sent while disabled
        post_event(client, storefront, f.paid("c_pause"))
        run_job(runner, "deliver-webhooks", t0 + timedelta(hours=3))
        assert len(paused.requests) == 3
    assert [d["status"] for d in deliveries(client, admin, endpoint["id"])] == ["delivered"] * 2
    assert [a.after["status"] for a in _audit(session, "webhook_endpoint.disable")] == ["disabled"]
    assert [a.after["status"] for a in _audit(session, "webhook_endpoint.enable")] == ["enabled"]


def test_disabling_twice_changes_nothing_the_second_time(client, admin, session):
    endpoint = create_endpoint(client, admin, "https://hooks.example.com/in", ["tier.changed"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/disable"
    first, second = _post(client, admin, path), _post(client, admin, path)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert len(_audit(session, "webhook_endpoint.disable")) == 1
    enable = f"/v1/webhook-endpoints/{endpoint['id']}/enable"
    assert _post(client, admin, enable).status_code == _post(client, admin, enable).status_code
    assert len(_audit(session, "webhook_endpoint.enable")) == 1


# --- sending a failed delivery again ----------------------------------------------------------


@pytest.fixture
def one_attempt(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 1)


def test_send_again_delivers_a_failed_message_on_the_next_run(
    client, admin, storefront, runner, session, one_attempt
):
    with Receiver(statuses=[500]) as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_again"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)
        failed = client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=failed", headers=admin
        ).get_json()["items"]
        [delivery] = failed
        assert (delivery["status"], delivery["last_status"]) == ("failed", 500)
        run_job(runner, "deliver-webhooks", t0 + DAY)
        assert len(receiver.requests) == 1  # given up: nothing more without "send again"

        path = f"/v1/webhook-deliveries/{delivery['id']}/retry"
        response = _post(client, admin, path)
        assert response.status_code == 200, response.get_json()
        again = response.get_json()
        assert (again["id"], again["status"], again["gave_up_at"]) == (delivery["id"], "pending",
                                                                       None)  # fmt: skip
        assert again["endpoint_id"] == endpoint["id"] and again["next_attempt_at"] is not None
        # Sent twice, it is scheduled once.
        assert _post(client, admin, path).get_json()["status"] == "pending"
        assert len(_audit(session, "webhook_delivery.retry")) == 1

        assert "deliver-webhooks: 1 changed" in run_job(runner, "deliver-webhooks", t0 + DAY)
        first, second = receiver.requests
    assert first.id == second.id  # the same message, under the same webhook-id
    assert second.verified(endpoint["secret"])["data"]["customer_id"] == "c_again"
    [delivered] = deliveries(client, admin, endpoint["id"])
    assert (delivered["status"], delivered["attempts"], delivered["last_status"]) == (
        "delivered", 2, 200,
    )  # fmt: skip
    response = _post(client, admin, f"/v1/webhook-deliveries/{delivery['id']}/retry")
    assert (response.status_code, response.get_json()["type"]) == (409, "conflict")
    failed = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=failed"
    assert client.get(failed, headers=admin).get_json()["items"] == []


def test_send_again_fails_again_after_one_more_failed_attempt(
    client, admin, storefront, runner, one_attempt
):
    with Receiver(statuses=[500, 502]) as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_down"))
        t0 = utcnow() + timedelta(seconds=1)
        run_job(runner, "deliver-webhooks", t0)
        [delivery] = deliveries(client, admin, endpoint["id"])
        _post(client, admin, f"/v1/webhook-deliveries/{delivery['id']}/retry")
        run_job(runner, "deliver-webhooks", t0 + timedelta(minutes=1))
        run_job(runner, "deliver-webhooks", t0 + DAY)
        assert len(receiver.requests) == 2
    [delivery] = deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "failed", 2, 502,
    )  # fmt: skip


def test_send_again_to_a_disabled_endpoint_is_a_conflict(
    client, admin, storefront, runner, one_attempt
):
    with Receiver(statuses=[500]) as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_off"))
        run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
    [delivery] = deliveries(client, admin, endpoint["id"])
    _post(client, admin, f"/v1/webhook-endpoints/{endpoint['id']}/disable")
    response = _post(client, admin, f"/v1/webhook-deliveries/{delivery['id']}/retry")
    assert (response.status_code, response.get_json()["type"]) == (409, "conflict")
    assert "disabled" in response.get_json()["detail"]
    [delivery] = deliveries(client, admin, endpoint["id"])
    assert delivery["status"] == "failed"


def test_unknown_ids_are_404_and_other_scopes_403(client, admin, storefront):
    for path in (
        "/v1/webhook-deliveries/999999/retry",
        "/v1/webhook-endpoints/99999/rotate-secret",
        "/v1/webhook-endpoints/99999/disable",
        "/v1/webhook-endpoints/99999/enable",
    ):
        response = _post(client, admin, path)
        assert (response.status_code, response.get_json()["type"]) == (404, "not-found"), path
        response = _post(client, storefront, path)
        assert response.status_code == 403, path
    assert client.get("/v1/webhook-endpoints/99999", headers=admin).status_code == 404
