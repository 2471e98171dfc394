"""WEBHOOK_ALLOW_PRIVATE=false (the production default): no webhook reaches the operator's own
network — refused when the endpoint is created with such an address, and refused again at
delivery for whatever address a name resolves to when the connection is made."""

import socket
from datetime import timedelta

import pytest

from loyalty.config import from_environment
from loyalty.types import utcnow
from loyalty.webhooks.targets import ADDRESS_REFUSED, URL_REFUSED, blocked_address
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


REFUSED_AT_CREATION = [
    "http://127.0.0.1:9/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://10.0.0.8/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fd00::5]/hook",
    # Spellings some resolver reads as 127.0.0.1 (or 0.0.0.0, this machine).
    "http://0/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://017700000001/hook",
    "http://127.1/hook",
    "http://0x7f.1/hook",
    # IPv6 carrying loopback or a private IPv4 address: mapped, compatible, NAT64, 6to4.
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::127.0.0.1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[64:ff9b::127.0.0.1]/hook",
    "http://[64:ff9b::a00:8]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[2002:c0a8:101::1]/hook",
    # Not a port at all.
    "http://hooks.example.com:99999/hook",
    "http://hooks.example.com:0/hook",
]


def _create(client, admin, url):
    return client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["points.earned"]}, headers=admin
    )


@pytest.mark.parametrize("url", REFUSED_AT_CREATION)
def test_an_internal_address_in_any_spelling_is_refused_at_creation(client, admin, closed, url):
    response = _create(client, admin, url)
    assert response.status_code == 422, url
    assert response.get_json()["errors"] == {"url": [URL_REFUSED]}
    assert client.get("/v1/webhook-endpoints", headers=admin).get_json()["items"] == []


def test_every_refusal_at_creation_reads_the_same(client, admin, closed):
    """No oracle: the answer never says which rule refused an address."""
    bodies = {_create(client, admin, url).get_data() for url in REFUSED_AT_CREATION}
    assert len(bodies) == 1


@pytest.mark.parametrize("url", ["http://hooks.example.com:99999/", "http://127.0.0.1:0/"])
def test_a_port_outside_1_to_65535_is_refused_even_with_private_addresses_allowed(
    client, admin, url
):
    response = _create(client, admin, url)
    assert (response.status_code, response.get_json()["errors"]) == (422, {"url": [URL_REFUSED]})


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"],
)
def test_public_addresses_in_their_ipv6_spellings_are_not_blocked(address):
    assert not blocked_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "0.0.0.0", "10.1.2.3",  # noqa: S104 - an address, not a bind "100.64.0.1", "169.254.169.254", "224.0.0.1",
        "240.0.0.1", "::1", "::", "fe80::1%eth0", "fec0::1", "fd00::1", "ff02::1",
        "::ffff:10.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", "2002:a00:1::",
        "2001::1",
    ],
)  # fmt: skip
def test_internal_addresses_are_blocked_whatever_their_form(address):
    assert blocked_address(address)


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
        assert delivery["last_error"] == ADDRESS_REFUSED
        later = now + timedelta(hours=1)  # allowed again: the retry goes through
        assert "deliver-webhooks: 1 changed" in run_job(runner, "deliver-webhooks", later)
        assert len(receiver.requests) == 1


def test_this_machines_own_name_counts_as_internal():
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), 80)}
    assert addresses and all(blocked_address(address) for address in addresses)


class ListeningSocket:
    """A loopback port that counts the TCP connections made to it, accepted or not."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        return self

    def connections(self) -> int:
        # A connect() that returned has completed its handshake: it waits in the backlog.
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def __exit__(self, *exc):
        self.sock.close()


def test_delivery_opens_no_connection_to_a_refused_address(client, admin, storefront, runner, app):
    """Names and spellings that resolve to loopback: checked before connecting, so not even
    a TCP handshake reaches the port, and every refusal is recorded with the same text."""
    with ListeningSocket() as listening:
        with socket.socket() as probe:  # a loopback port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        urls = [
            f"http://localhost:{listening.port}/hook",
            f"http://2130706433:{listening.port}/hook",
            f"http://127.0.0.1:{listening.port}/hook",
            f"http://127.0.0.1:{closed_port}/hook",
            f"https://localhost:{listening.port}/hook",
        ]
        endpoints = [create_endpoint(client, admin, url, ["points.earned"]) for url in urls]
        post_event(client, storefront, f.paid("c_scan", lines=[f.line(unit_price=7000)]))
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        try:
            run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
        finally:
            app.config["WEBHOOK_ALLOW_PRIVATE"] = True
        assert listening.connections() == 0
    errors = [deliveries(client, admin, e["id"])[0]["last_error"] for e in endpoints]
    assert errors == [ADDRESS_REFUSED] * len(urls)
