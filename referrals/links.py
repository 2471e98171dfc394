"""Share links and the signed click token that attributes a claim to a click.

`/r/<code>` redirects to the landing page (the program's `landing_url`, else the service's own
`/welcome`) with `ref=<code>` and `click=<token>`: the token is
itsdangerous-signed (salted for this purpose only, timestamped), so a storefront forwarding it
with a claim cannot forge a click or move it to another code.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from loyalty.errors import ValidationFailed

CLICK_SALT = "loyalty.referral-click.v1"


def _serializer() -> URLSafeTimedSerializer:
    # Newest secret last: signs with it, accepts every listed one (key rotation).
    return URLSafeTimedSerializer(current_app.config["SECRET_KEYS"], salt=CLICK_SALT)


def share_url(code: str) -> str:
    return f"{current_app.config['LOYALTY_PUBLIC_URL']}/r/{code}"


def sign_click(click_id: int, code: str) -> str:
    return _serializer().dumps({"click": click_id, "code": code})


def read_click(token: str, code: str, max_age_seconds: int) -> int | None:
    """The click id a token names, if it was signed by us for this code.

    Tampered, forged or moved to another code: refused. Merely old: no attribution (None).
    """
    try:
        data = _serializer().loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        return None
    except BadSignature as exc:
        raise ValidationFailed(errors={"click": ["Not a link signed by this service."]}) from exc
    if (
        not isinstance(data, dict)
        or data.get("code") != code
        or not isinstance(data.get("click"), int)
    ):
        raise ValidationFailed(errors={"click": ["This link belongs to another code."]})
    return data["click"]


def own_landing_page() -> str:
    """Where a share link lands when the program names no landing page: the service's own
    page with the friend's offer (`GET /welcome`)."""
    return f"{current_app.config['LOYALTY_PUBLIC_URL']}/welcome"


def landing_url(base: str | None, code: str, token: str) -> str:
    """`base` (or the service's own landing page) with `ref=<code>&click=<token>` added to
    whatever query it already has."""
    parts = urlsplit(base or own_landing_page())
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("ref", "click")]
    query += [("ref", code), ("click", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
