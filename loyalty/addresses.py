"""Client IP addresses as the abuse limits count them.

A storefront forwards its shopper's address as text, and one address has many spellings:
`::ffff:203.0.113.9` is 203.0.113.9; `0:0:0:0:0:0:0:1` is `::1`; a whole IPv6 /64 usually
belongs to one subscriber, who can pick any address inside it. So a limit counts per
`client_key`: the canonical IPv4 address, or the IPv6 /64 network.

Anything that is not an address is refused rather than guessed at: a port (`1.2.3.4:80`),
leading zeros (`203.0.113.09`, octal to some parsers), the integer form (`3405803785`),
brackets, a host name. Python's `ipaddress` refuses all of these; a zone id (`fe80::1%eth0`)
is dropped, since it names the receiving interface, not the client.
"""

import ipaddress

from marshmallow import ValidationError, fields

IPV6_GROUP_PREFIX = 64
MAX_TEXT = 64  # the longest IPv6 spelling with an embedded IPv4 is 45 characters


class NotAnAddress(ValueError):
    pass


def parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address `text` spells, IPv4-mapped and IPv4-compatible IPv6 unwrapped to IPv4."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        raise NotAnAddress("not an IP address")
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError as exc:
        raise NotAnAddress("not an IP address") from exc
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def canonical_ip(text: str | None) -> str:
    """The one spelling of an address: dotted IPv4, or compressed lower-case IPv6."""
    return str(parse_ip(text))


def canonical_ip_or_none(text) -> str | None:
    """`canonical_ip`, or None for anything that is not an address (a platform's order may
    carry a proxy's note, a host name or nothing where the shopper's address belongs)."""
    try:
        return canonical_ip(text)
    except NotAnAddress:
        return None


def client_key(text: str | None) -> str:
    """What a per-address limit counts: the IPv4 address, or the IPv6 /64 it lies in."""
    address = parse_ip(text)
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))


class IPAddress(fields.String):
    """A client's IP address in a request body, loaded as its canonical spelling."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("description", "An IPv4 or IPv6 address, without a port")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonical_ip(text)
        except NotAnAddress as exc:
            raise ValidationError("Not a valid IP address (no port, no leading zeros).") from exc
