"""The one generator of codes people type: reward codes, gift card codes, referral codes.

Codes use an alphabet without look-alikes (no 0/O, 1/I/L, U) — Crockford's base32 — and come
from `secrets`, so guessing one is as hard as its bits say: 16 characters = 80 bits.
"""

import secrets

UNAMBIGUOUS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: 32 symbols, 5 bits each
_TYPO_FIXES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def random_code(length: int, alphabet: str = UNAMBIGUOUS) -> str:
    if len(alphabet) == 32:
        # 5 bits a symbol, all drawn at once: exactly uniform, and one system call instead of
        # one per character (a million codes in seconds, not minutes).
        bits = int.from_bytes(secrets.token_bytes((5 * length + 7) // 8), "big")
        return "".join(alphabet[(bits >> (5 * i)) & 31] for i in range(length))
    return "".join(secrets.choice(alphabet) for _ in range(length))


def normalize_code(text: str) -> str:
    """What the shopper typed → the canonical code: case, spaces and dashes don't matter,
    and letters that look like digits are read as the digits they were meant to be."""
    return "".join(text.split()).replace("-", "").upper().translate(_TYPO_FIXES)


def group(code: str, size: int = 4) -> str:
    """`ABCD-EFGH-JKMN-PQRS`: easier to read aloud and to copy."""
    return "-".join(code[i : i + size] for i in range(0, len(code), size))
