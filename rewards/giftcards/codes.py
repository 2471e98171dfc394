"""Gift card codes: made by the shared generator, stored only as a keyed hash and last 4.

The hash key is derived from each entry of SECRET_KEYS (newest last), so rotating the secret
needs no re-hashing up front: lookups try the hash under every key, and a card found under an
older key is re-hashed under the newest one.
"""

import hashlib
import hmac

from loyalty.codes import UNAMBIGUOUS, group, normalize_code, random_code

CODE_LENGTH = 16  # 16 × 5 bits = 80 bits
_PURPOSE = b"loyalty.gift-card-code.v1"


def new_code() -> str:
    return random_code(CODE_LENGTH)


def display(code: str) -> str:
    return group(code)


def parse(text: str) -> str | None:
    """The canonical code, or None when it can't be a card's code at all."""
    code = normalize_code(text)
    if len(code) != CODE_LENGTH or not set(code) <= set(UNAMBIGUOUS):
        return None
    return code


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def code_hash(code: str, secret: str) -> str:
    return hmac.new(_key(secret), code.encode(), hashlib.sha256).hexdigest()


def candidate_hashes(code: str, secrets: list[str]) -> list[str]:
    """The code's hash under every secret, newest first (the one new cards are stored under)."""
    return [code_hash(code, secret) for secret in reversed(secrets)]
