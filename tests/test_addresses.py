"""Client addresses: one spelling per address, IPv6 grouped by /64, non-addresses refused."""

import pytest
from marshmallow import Schema, ValidationError

from loyalty.addresses import IPAddress, NotAnAddress, canonical_ip, client_key


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("0:0:0:0:0:ffff:cb00:7109", "203.0.113.9"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        (" 203.0.113.9 ", "203.0.113.9"),
    ],
)
def test_spellings_of_one_address_are_one(text, canonical):
    assert canonical_ip(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "203.0.113.09",
        "203.0.113.9:8080",
        "[::1]:80",
        "3405803785",
        "0x7f000001",
        "example.com",
        "",
        "1.2.3",
        "::ffff:999.1.1.1",
        "1" * 100,
    ],
)
def test_what_is_not_an_address_is_refused(text):
    with pytest.raises(NotAnAddress):
        canonical_ip(text)


def test_ipv6_counts_per_64_and_ipv4_per_address():
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9") == "203.0.113.9"


def test_schema_field_loads_the_canonical_spelling_and_refuses_the_rest():
    schema = Schema.from_dict({"ip": IPAddress()})()
    assert schema.load({"ip": "::FFFF:203.0.113.9"}) == {"ip": "203.0.113.9"}
    with pytest.raises(ValidationError) as refused:
        schema.load({"ip": "203.0.113.9:443"})
    assert "ip" in refused.value.messages


def test_or_none_gives_the_canonical_spelling_or_nothing():
    from loyalty.addresses import canonical_ip_or_none

    assert canonical_ip_or_none("::ffff:203.0.113.9") == "203.0.113.9"
    assert [canonical_ip_or_none(t) for t in (None, "", "localhost", "203.0.113.09")] == [None] * 4
