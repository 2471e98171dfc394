"""Where a webhook may go. With WEBHOOK_ALLOW_PRIVATE off (the production default), only to
hosts on the internet: never the operator's own machine or network, whatever the spelling.

- When an endpoint is created, its URL as written (`url_refused`): a port from 1 to 65535;
  no internal address, including IPv6 spellings that carry an internal IPv4 address
  (`::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`); no host that a
  resolver may read as an IPv4 address though it is not written as one (`0`, `2130706433`,
  `0x7f000001`, `017700000001`, `127.1`): a name whose last label is a number is no DNS name.
- When a delivery connects (`connect_checked`), every address the host resolves to, before any
  connection is opened; the socket then goes to one of those checked addresses, never to a
  second lookup's answer, so a name re-bound between the check and the connection changes
  nothing. TLS still names the host (SNI, certificate check) and so does the `Host` header.

Every refusal reads the same, at creation (`URL_REFUSED`) and in a delivery's `last_error`
(`ADDRESS_REFUSED`): which rule refused an address would tell an admin what lies behind it.
(sentry's `safe_create_connection` works the same way for its outbound requests.)
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

URL_REFUSED = (
    "Not a URL webhooks may be sent to: http or https, a port from 1 to 65535 and a host on "
    "the internet (internal addresses only with WEBHOOK_ALLOW_PRIVATE=true)."
)
ADDRESS_REFUSED = (
    "Refused: the host resolves to no address webhooks may be sent to "
    "(WEBHOOK_ALLOW_PRIVATE is off)."
)

# NAT64's well-known prefix: an address in it carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Local-use NAT64 (RFC 8215) translates inside the operator's own network.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
# The last label of a name some resolver reads as an IPv4 address (decimal, octal or hex).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class RefusedAddress(OSError):
    def __init__(self):
        super().__init__(ADDRESS_REFUSED)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_address(address: str) -> bool:
    """Is this IP address inside the operator's own machine or network — loopback, private,
    shared (CGNAT), link-local (cloud metadata at 169.254.169.254), unique- or site-local,
    multicast, reserved, unspecified, local-use NAT64 — rather than somewhere on the internet?
    An IPv6 address carrying an IPv4 one (mapped, NAT64, 6to4) is judged by that IPv4 one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            ip = inner
        elif ip in _LOCAL_NAT64 or ip.is_site_local:
            return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def _port_refused(parts) -> bool:
    try:
        port = parts.port
    except ValueError:  # above 65535, or not a number
        return True
    return port is not None and not 1 <= port <= 65535


def url_refused(url: str, allow_private: bool) -> bool:
    """Would this endpoint URL be refused as it is written? (Names are not resolved here:
    delivery checks what they resolve to at each connection.)"""
    parts = urlsplit(url)
    if _port_refused(parts):
        return True
    if allow_private:
        return False
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        return blocked_address(host)
    except ValueError:  # not an address as ipaddress writes one: a name, or a numeric trick
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return bool(_NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]))


def connect_checked(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """`socket.create_connection` that first resolves the host once, refuses the lot if any
    address it resolves to is internal, or if it resolves to none (`RefusedAddress`, before
    any packet is sent to it), and then connects only to those checked addresses, in the
    resolver's order."""
    host, port = address
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise RefusedAddress()
    try:
        resolved = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror:
        # Read the same as an internal answer: which internal names exist is not for an admin
        # to learn from the difference.
        raise RefusedAddress() from None
    if not resolved or any(blocked_address(info[4][0]) for info in resolved):
        raise RefusedAddress()
    error = None
    for family, kind, proto, _name, sockaddr in resolved:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error
