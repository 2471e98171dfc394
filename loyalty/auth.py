"""Who is calling: server API keys (hashed, scoped) and widget tokens (signed, one member).

`Authorization: Bearer lk_...` is an API key; any other bearer value is a widget token, which
is accepted only on `/v1/me` and below. 401/403 are decided before the body is read.

A widget token names one member twice — by internal id and by the store's customer id — so it
stops working when that member is erased, and never reaches a member re-created later under
the same customer id.
"""

import contextlib
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import HTTPException

from loyalty import cache, transaction
from loyalty.audit import record_change
from loyalty.errors import DomainError, Forbidden, Unauthorized, ValidationFailed
from loyalty.extensions import Base, db, lazy_session
from loyalty.members.models import Member
from loyalty.retry import pause, transient
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
    """A new key (audited) and the key itself, which only its hash is kept of: shown once."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(key), prefix=key[:10], scopes=sorted(set(scopes)))
    session.add(row)
    session.flush()
    record_change(
        session, "api_key.create", "api_key", row.id, None,
        {"name": row.name, "scopes": row.scopes, "prefix": row.prefix},
    )  # fmt: skip
    return row, key


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones too, newest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc())))


def revoke_api_key(session: Session, key_id: int) -> ApiKey | None:
    """Revoke a key (audited; a key revoked already stays as it was); None if there is none."""
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        record_change(
            session, "api_key.revoke", "api_key", row.id, {"revoked_at": None},
            {"revoked_at": row.revoked_at.isoformat()},
        )  # fmt: skip
        session.flush()
    return row


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
        found = cache.cached(lazy_session(), "api_keys", digest, lambda: _live_key(digest))
        if found is None:
            raise Unauthorized("Unknown or revoked API key.")
        key_id, scopes = found
        return Principal("api_key", key_id, set(scopes))
    member_id, customer_id = _widget_token_member(token)
    return Principal("widget", str(member_id), set(), member_id=member_id, customer_id=customer_id)


class VerifiedTokens:
    """Widget tokens whose signature this process has checked, under which secrets:
    token -> (member id, customer id, signed at, whole seconds).

    A shopper's browser sends the same token on every call of its life, and checking the
    signature (itsdangerous: key derivation, HMAC, base64, JSON) was a fifth of what a
    `GET /v1/me` cost in Python. The age is still checked on every request, exactly as
    itsdangerous checks it; a changed SECRET_KEYS empties the cache. Bounded: the oldest
    entry goes when it is full.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self.secrets: list | None = None
        self.tokens: dict[str, tuple[int, str, int]] = {}

    def get(self, secrets: list, token: str) -> tuple[int, str, int] | None:
        if secrets != self.secrets:
            self.secrets, self.tokens = list(secrets), {}
            return None
        return self.tokens.get(token)

    def put(self, token: str, verified: tuple[int, str, int]) -> None:
        tokens = self.tokens
        if len(tokens) >= self.SIZE:
            # another thread may get there first
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del tokens[next(iter(tokens))]
        tokens[token] = verified


def _widget_token_member(token: str) -> tuple[int, str]:
    """(member id, customer id) of a valid, unexpired widget token; 401 otherwise."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy's own
    config = app.config
    verified_tokens = app.extensions.get("loyalty.verified_tokens")
    if verified_tokens is None:
        verified_tokens = app.extensions["loyalty.verified_tokens"] = VerifiedTokens()
    verified = verified_tokens.get(config["SECRET_KEYS"], token)
    if verified is None:
        try:
            data, signed = widget_serializer().loads(
                token, max_age=config["WIDGET_TOKEN_MAX_AGE"], return_timestamp=True
            )
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
        verified = (data["m"], data["c"], int(signed.timestamp()))
        verified_tokens.put(token, verified)
    else:
        # itsdangerous's own check: whole seconds since signing, above max_age or below zero.
        age = int(time.time()) - verified[2]
        if age > config["WIDGET_TOKEN_MAX_AGE"] or age < 0:
            raise Unauthorized("The widget token has expired.")
    return verified[0], verified[1]


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


def require(
    *scopes: str,
    widget: bool = False,
    member_checked_by_view: bool = False,
    config_checked_by_view: bool = False,
    rerun_on_transient: bool | None = None,
):
    """Decorate a view: callers need an API key with one of `scopes` (admin passes all).

    `widget=True` marks the `/v1/me` views, which take a widget token and nothing else; the
    token's member is checked (401 when gone) before the view runs — or, with
    `member_checked_by_view=True`, by the view itself, in the one query that reads it
    (`widget_member_conditions`, 401 `widget_member_gone()` when it finds nothing).

    `config_checked_by_view=True`: a statement of the view reads the config stamp
    (`cache.version_column()`), so cached settings (the API key included) are used on trust
    and the request runs again if they were stale; see loyalty/cache.py.

    A transient database failure (loyalty/retry.py) inside the view runs it once more when
    `rerun_on_transient` (by default: for GET and HEAD, which only read); the view's work must
    be one transaction with no effect outside the database. Otherwise, or if it fails again,
    the caller gets 503 with Retry-After.
    """

    def decorator(view):
        takes_query = _declares_query(view)

        def checked(args, kwargs):
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

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            rerun = rerun_on_transient
            for attempt in range(3):  # a stale config and a transient failure, once each
                if config_checked_by_view:
                    cache.optimistic()
                try:
                    try:
                        result = checked(args, kwargs)
                    except (DomainError, HTTPException):
                        cache.confirm(db.session)  # a refusal on stale settings runs again
                        raise
                    cache.confirm(db.session)
                    return result
                except cache.StaleConfig:
                    pass  # at most once: the request has read the stamp now
                except (DBAPIError, PoolTimeout) as exc:
                    if rerun is None:
                        rerun = request.method in ("GET", "HEAD")
                    if not (rerun and transient(exc)):
                        raise
                    rerun = False
                    pause(attempt)
                _start_again()
            raise AssertionError("unreachable: a request is run again at most twice")

        return wrapper

    return decorator


def _start_again() -> None:
    """Forget what the request did so far (nothing of it was committed) before running it
    again: its transaction, and the caller and member read with the settings of then."""
    transaction.discard()
    g.pop("principal", None)
    g.pop("widget_member", None)


def current_principal() -> Principal:
    """The caller `require` accepted (no further check: `require` made it)."""
    return authenticate(check_member=False)


def current_member() -> Member:
    """In a `@require(widget=True)` view: the token's member, checked before the body is read."""
    authenticate()
    return g.widget_member
