"""Values sealed at rest: encrypted and authenticated with keys derived from SECRET_KEYS.

A value the app must read back (a webhook signing secret, a stored reply that may carry a
gift card code or a token) is kept as a Fernet token (AES-128-CBC + HMAC-SHA256). Each purpose
has its own key, derived by HKDF from every entry of SECRET_KEYS: the newest (last) entry
seals, every entry opens, so rotating the secret keeps what was sealed readable for as long as
the old entry stays in the list (`flask loyalty reseal` moves everything to the newest one).
A token that no key opens (tampered with, or sealed under a secret since dropped) raises
`Unsealable`; nothing falls back to plaintext.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import select, update

IDEMPOTENT_REPLY = "idempotent-reply"
WEBHOOK_SECRET = "webhook-secret"  # noqa: S105 - a purpose's name, not a secret
EMAIL_SECRET = "email-secret"  # noqa: S105 - what a queued email must not hold in clear
_INFO = b"loyalty.sealing.v1:"


class Unsealable(ValueError):
    """No key of SECRET_KEYS opens this token."""


def _key(secret: str, purpose: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + purpose.encode()
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=32)
def _fernet(secrets: tuple[str, ...], purpose: str) -> MultiFernet:
    # MultiFernet seals with its first key and tries them all: newest first.
    return MultiFernet([Fernet(_key(secret, purpose)) for secret in reversed(secrets)])


class Sealer:
    """Seals and opens the values of one purpose under a list of secrets (newest last)."""

    def __init__(self, secrets: list[str] | tuple[str, ...], purpose: str):
        if not secrets:
            raise ValueError("sealing needs at least one secret")
        self._fernet = _fernet(tuple(secrets), purpose)

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def unseal(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise Unsealable("no key of SECRET_KEYS opens this value") from exc

    def reseal(self, token: str) -> str:
        """The same value sealed under the newest secret (Unsealable if none opens it)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise Unsealable("no key of SECRET_KEYS opens this value") from exc


def sealer(purpose: str) -> Sealer:
    """The app's sealer for `purpose` (its SECRET_KEYS)."""
    return Sealer(current_app.config["SECRET_KEYS"], purpose)


def reseal_column(session, column, purpose: str, secrets: list[str], batch: int = 500):
    """Seal every value of `column` (a mapped attribute of a model with one integer primary
    key) under the newest secret. Returns (resealed, unreadable): values that no key opens
    are left as they are."""
    model = column.class_
    [key] = model.__mapper__.primary_key
    sealer_ = Sealer(secrets, purpose)
    resealed = unreadable = 0
    last = None
    while True:
        query = select(key, column).where(column.is_not(None)).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        rows = session.execute(query).all()
        if not rows:
            return resealed, unreadable
        for row_key, token in rows:
            try:
                new = sealer_.reseal(token)
            except Unsealable:
                unreadable += 1
                continue
            session.execute(
                update(model).where(key == row_key).values({column.key: new}),
                execution_options={"synchronize_session": False},
            )
            resealed += 1
        last = rows[-1][0]
        session.commit()  # one batch per transaction: a long run holds no lock for long
