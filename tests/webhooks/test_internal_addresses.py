"""WEBHOOK_ALLOW_PRIVATE=false (the production default): no webhook reaches the operator's own
network — refused when the endpoint is created with such an address, and refused again at
delivery for whatever address a name resolves to when the connection is made."""

import socket
from datetime import timedelta

import pytest

from loyalty.config import from_environment
from loyalty.types import utcnow
from loyalty.webhooks.delivery import blocked_address
from tests import factories as f
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import create_endpoint, deliveries, run_job
from tests.webhooks.receiver import Receiver


@pytest.fixture
def closed(app):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    yield
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True


def test_the_default_is_closed_in_production_and_open_elsewhere(tmp_path):
    assert (
        from_environment(str(tmp_path), {"LOYALTY_ENV": "production"})["WEBHOOK_ALLOW_PRIVATE"]
        is False
    )
    assert from_environment(str(tmp_path), {})["WEBHOOK_ALLOW_PRIVATE"] is True
    opened = {"LOYALTY_ENV": "production", "WEBHOOK_ALLOW_PRIVATE": "true"}
    assert from_environment(str(tmp_path), opened)["WEBHOOK_ALLOW_PRIVATE"] is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::5]/hook",
    ],
)
def test_an_internal_address_is_refused_at_creation(client, admin, closed, url):
    response = client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["points.earned"]}, headers=admin
    )
    assert response.status_code == 422, url
    assert "internal address" in str(response.get_json()["errors"])


def test_a_public_address_is_accepted(client, admin, closed):
    create_endpoint(client, admin, "https://hooks.example.com/loyalty", ["points.earned"])


def test_delivery_refuses_the_address_it_really_reaches(client, admin, storefront, runner, app):
    """A name that passes creation but resolves to this machine (or is re-bound to it) is
    refused when the connection is made, before anything is sent; the delivery retries."""
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])  # allowed now
        post_event(client, storefront, f.paid("c_ssrf", lines=[f.line(unit_price=7000)]))
        now = utcnow() + timedelta(seconds=1)
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        try:
            assert "deliver-webhooks: 0 changed" in run_job(runner, "deliver-webhooks", now)
        finally:
            app.config["WEBHOOK_ALLOW_PRIVATE"] = True
        assert receiver.requests == []
        [delivery] = deliveries(client, admin, endpoint["id"])
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert "internal address" in delivery["last_error"]
        later = now + timedelta(hours=1)  # allowed again: the retry goes through
        assert "deliver-webhooks: 1 changed" in run_job(runner, "deliver-webhooks", later)
        assert len(receiver.requests) == 1


def test_this_machines_own_name_counts_as_internal():
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), 80)}
    assert addresses and all(blocked_address(address) for address in addresses)
