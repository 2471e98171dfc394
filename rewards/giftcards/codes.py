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
_SEAL_PURPOSE = b"loyalty.gift-card-seal.v1"


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


def _key(secret: str, purpose: bytes = _PURPOSE) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def code_hash(code: str, secret: str) -> str:
    return hmac.new(_key(secret), code.encode(), hashlib.sha256).hexdigest()


def candidate_hashes(code: str, secrets: list[str]) -> list[str]:
    """The code's hash under every secret, newest first (the one new cards are stored under)."""
    return [code_hash(code, secret) for secret in reversed(secrets)]


# A bought card's code must reach the buyer after the webhook that issued it, so until the
# storefront collects it once it is kept sealed: XORed with a pad derived from the secret and
# the purchase's own id (a one-time pad per purchase), then erased when revealed.
_CODE_BYTES = CODE_LENGTH * 5 // 8


def _pad(secret: str, nonce: str) -> int:
    digest = hmac.new(_key(secret, _SEAL_PURPOSE), nonce.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:_CODE_BYTES], "big")


def seal(code: str, nonce: str, secret: str) -> str:
    value = 0
    for char in code:
        value = value << 5 | UNAMBIGUOUS.index(char)
    return format(value ^ _pad(secret, nonce), f"0{_CODE_BYTES * 2}x")


def unseal(sealed: str, nonce: str, secrets: list[str], stored_hash: str) -> str | None:
    """The sealed code, if one of `secrets` opens it to the code whose hash is `stored_hash`."""
    for secret in reversed(secrets):
        value = int(sealed, 16) ^ _pad(secret, nonce)
        code = "".join(UNAMBIGUOUS[(value >> 5 * i) & 31] for i in reversed(range(CODE_LENGTH)))
        if stored_hash in candidate_hashes(code, secrets):
            return code
    return None
