"""The connections delivery opens with WEBHOOK_ALLOW_PRIVATE off: resolved once, checked, and
then made to the checked address, with TLS and `Host` still naming the host.

A test may reach no machine but this one, so here 127.0.0.1 plays an address on the internet
(`blocked_address` is narrowed to let it through); everything else is the real stack: the
resolver's answer, sockets, TLS, an HTTP receiver.
"""

import datetime
import ipaddress
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loyalty.webhooks import targets
from loyalty.webhooks.delivery import post
from tests.webhooks.receiver import Receiver

PUBLIC_HERE = "127.0.0.1"


@pytest.fixture
def loopback_plays_the_internet(monkeypatch):
    real = targets.blocked_address
    monkeypatch.setattr(
        targets, "blocked_address", lambda address: address != PUBLIC_HERE and real(address)
    )


@pytest.fixture
def resolver(monkeypatch):
    """`socket.getaddrinfo` answering names under `.test` from a script, each answer once:
    a name re-bound between two lookups."""
    real = socket.getaddrinfo
    answers: dict[str, list[str]] = {}
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".test"):
            asked.append(host)
            if not answers.get(host):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            address = answers[host].pop(0)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def test_the_connection_goes_to_the_address_that_was_checked(loopback_plays_the_internet, resolver):
    """Checked as 127.0.0.1, then re-bound to 127.0.0.2 (internal here): a second lookup at
    connection time would go there; the request reaches the checked address instead, and
    its `Host` is still the name."""
    answers, asked = resolver
    answers["hooks.test"] = [PUBLIC_HERE, "127.0.0.2"]
    with Receiver() as receiver:
        port = receiver.server.server_port
        outcome = post(f"http://hooks.test:{port}/hooks", {"X-Probe": "1"}, b"{}", 5)
        assert (outcome.status, outcome.error) == (200, None)
        assert asked == ["hooks.test"]
        [received] = receiver.requests
        assert received.headers["host"] == f"hooks.test:{port}"


def test_a_name_re_bound_to_an_internal_address_is_refused_before_connecting(
    loopback_plays_the_internet, resolver
):
    answers, _asked = resolver
    answers["hooks.test"] = ["127.0.0.2"]
    with Receiver() as receiver:
        outcome = post(f"http://hooks.test:{receiver.server.server_port}/", {}, b"{}", 5)
        assert (outcome.status, outcome.error) == (None, targets.ADDRESS_REFUSED)
        assert receiver.requests == []


def test_a_name_that_does_not_resolve_reads_like_a_refused_one(
    loopback_plays_the_internet, resolver
):
    """Else the difference would tell which internal names exist."""
    outcome = post("http://gone.test/hooks", {}, b"{}", 5)
    assert (outcome.status, outcome.error) == (None, targets.ADDRESS_REFUSED)


def _certificate_for(name: str, directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("trusted_name, delivered", [("hooks.test", True), ("other.test", False)])
def test_tls_names_the_host_not_the_checked_address(
    loopback_plays_the_internet, resolver, monkeypatch, tmp_path, trusted_name, delivered
):
    """Over https the socket goes to the checked address while TLS sends the host name (SNI)
    and verifies the certificate against it: a certificate for another name is refused."""
    answers, _asked = resolver
    answers["hooks.test"] = [PUBLIC_HERE]
    cert, key = _certificate_for(trusted_name, tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the client trusts this certificate only
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    receiver = Receiver()
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    with receiver:
        outcome = post(f"https://hooks.test:{receiver.server.server_port}/", {}, b"{}", 5)
        assert server_names == ["hooks.test"]
        assert outcome.delivered is delivered, outcome
        assert len(receiver.requests) == int(delivered)
        if not delivered:
            assert "CERTIFICATE_VERIFY_FAILED" in outcome.error


def test_an_address_literal_is_checked_like_a_name(loopback_plays_the_internet):
    assert ipaddress.ip_address(PUBLIC_HERE).is_loopback  # what the fixture lets through
    with Receiver() as receiver:
        url = f"http://127.0.0.1:{receiver.server.server_port}/hooks"
        assert post(url, {}, b"{}", 5).delivered
        refused = post(url.replace("127.0.0.1", "[::1]"), {}, b"{}", 5)
        assert refused.error == targets.ADDRESS_REFUSED
        assert len(receiver.requests) == 1
