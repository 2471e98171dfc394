"""Who is calling: server API keys (hashed, scoped) and widget tokens (signed, one member).

`Authorization: Bearer lk_...` is an API key; any other bearer value is a widget token, which
is accepted only on `/v1/me` and below. 401/403 are decided before the body is read.

A widget token names one member twice — by internal id and by the store's customer id — so it
stops working when that member is erased, and never reaches a member re-created later under
the same customer id.
"""

import functools
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty import cache
from loyalty.errors import Forbidden, Unauthorized, ValidationFailed
from loyalty.extensions import Base, db
from loyalty.members.models import Member
from loyalty.types import UTCDateTime, utcnow

SCOPES = ("admin", "storefront", "reports")
KEY_PREFIX = "lk_"
WIDGET_TOKEN_SALT = "loyalty.widget-token.v1"  # noqa: S105 - a salt, not a secret


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the whole key: keys are 256 random bits, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in listings to tell keys apart
    scopes: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


cache.watch(ApiKey, "api_keys")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(key), prefix=key[:10], scopes=sorted(set(scopes)))
    session.add(row)
    session.flush()
    return row, key


@dataclass
class Principal:
    kind: str  # "api_key" | "widget"
    id: str  # api key id, or the member id for a widget token
    scopes: set = field(default_factory=set)
    member_id: int | None = None
    customer_id: str | None = None  # for a widget token: the store's id it was issued for

    @property
    def audit_name(self) -> str:
        return f"{self.kind}:{self.id}"


def widget_serializer() -> URLSafeTimedSerializer:
    # Newest secret last in config; itsdangerous signs with the last and accepts them all.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEYS"], salt=WIDGET_TOKEN_SALT)


def issue_widget_token(member_pk: int, customer_id: str) -> str:
    return widget_serializer().dumps({"m": member_pk, "c": customer_id})


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _principal_from_request() -> Principal:
    token = _bearer()
    if token is None:
        raise Unauthorized("Send `Authorization: Bearer <key or widget token>`.")
    if token.startswith(KEY_PREFIX):
        digest = hash_key(token)
        found = cache.cached(db.session, "api_keys", digest, lambda: _live_key(digest))
        if found is None:
            raise Unauthorized("Unknown or revoked API key.")
        key_id, scopes = found
        return Principal("api_key", key_id, set(scopes))
    try:
        data = widget_serializer().loads(token, max_age=current_app.config["WIDGET_TOKEN_MAX_AGE"])
    except SignatureExpired as exc:
        raise Unauthorized("The widget token has expired.") from exc
    except BadSignature as exc:
        raise Unauthorized("Invalid widget token.") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("m"), int)
        or not isinstance(data.get("c"), str)
    ):
        raise Unauthorized("Invalid widget token.")
    return Principal("widget", str(data["m"]), set(), member_id=data["m"], customer_id=data["c"])


def _live_key(digest: str) -> tuple[str, tuple[str, ...]] | None:
    row = db.session.execute(
        select(ApiKey.id, ApiKey.scopes).where(
            ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
        )
    ).first()
    return (str(row.id), tuple(row.scopes)) if row is not None else None


def widget_member_conditions(member_id, customer_id) -> list:
    """A token's member (`member_id`, `customer_id`: its values or bind parameters), as long
    as it is the member the token was issued to: the same internal id and customer id, not
    erased (an erased and re-created member is another)."""
    return [
        Member.id == member_id,
        Member.customer_id == customer_id,
        Member.erased_at.is_(None),
    ]


def widget_member_gone() -> Unauthorized:
    return Unauthorized("This widget token's member no longer exists.")


def _widget_member(principal: Principal) -> Member:
    conditions = widget_member_conditions(principal.member_id, principal.customer_id)
    query = select(Member).where(*conditions)
    member = db.session.execute(query).scalar_one_or_none()
    if member is None:
        raise widget_member_gone()
    return member


def authenticate(*, check_member: bool = True) -> Principal:
    """The caller; for a widget token, also its member's check (see `require`)."""
    if "principal" not in g:
        g.principal = _principal_from_request()
    principal = g.principal
    if check_member and principal.kind == "widget" and "widget_member" not in g:
        # Checked here, not only in the /v1/me views: nothing (an idempotent replay included)
        # may answer a token whose member is gone.
        g.widget_member = _widget_member(principal)
    return principal


def _declares_query(view) -> bool:
    """Does this view take query parameters (a flask-smorest query schema below `require`)?"""
    arguments = getattr(view, "_apidoc", {}).get("arguments", {})
    return any(parameter.get("in") == "query" for parameter in arguments.get("parameters", []))


def require(*scopes: str, widget: bool = False, member_checked_by_view: bool = False):
    """Decorate a view: callers need an API key with one of `scopes` (admin passes all).

    `widget=True` marks the `/v1/me` views, which take a widget token and nothing else; the
    token's member is checked (401 when gone) before the view runs — or, with
    `member_checked_by_view=True`, by the view itself, in the one query that reads it
    (`widget_member_conditions`, 401 `widget_member_gone()` when it finds nothing).
    """

    def decorator(view):
        takes_query = _declares_query(view)

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = authenticate(check_member=not member_checked_by_view)
            if widget:
                if principal.kind != "widget":
                    raise Forbidden("This endpoint takes a widget token.")
            elif principal.kind != "api_key":
                raise Forbidden("Widget tokens are accepted only on /v1/me.")
            elif "admin" not in principal.scopes and not principal.scopes & set(scopes):
                raise Forbidden(f"This needs an API key with scope {' or '.join(scopes)}.")
            if request.args and not takes_query:
                # As a query schema refuses unknown parameters (loyalty.extensions.Blueprint),
                # an endpoint without one refuses any.
                unknown = {name: ["Unknown field."] for name in request.args}
                raise ValidationFailed(
                    "See `errors` for each invalid field.", errors={"query": unknown}
                )
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_principal() -> Principal:
    """The caller `require` accepted (no further check: `require` made it)."""
    return authenticate(check_member=False)


def current_member() -> Member:
    """In a `@require(widget=True)` view: the token's member, checked before the body is read."""
    authenticate()
    return g.widget_member
