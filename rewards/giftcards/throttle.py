"""Guessing gift card codes: every request that takes a code is counted, and misses lock out.

Every endpoint that takes a code (lookup, holds) shares one allowance and one failure count,
each kept three ways: per shopper address (the `ip` the storefront forwards, else the caller's
own), per card (the code's keyed hash, as the database stores it, never the code) and per API
key (a store-wide ceiling, far higher, against guesses spread over many addresses). Any code
that is not a live card (unknown, malformed, disabled, expired) is a failure on all three; a
failure count that reaches its maximum within the window locks that address, card or key out
of every such endpoint for the lockout time: 429 `rate-limited` with `Retry-After`.

Counted by `loyalty.ratelimit` as `shared` limits: in Redis when configured, else in the
database; never in one process's memory.
"""

from dataclasses import dataclass

from loyalty.codes import normalize_code
from loyalty.errors import RateLimited
from loyalty.ratelimit import RateLimiter, limiter
from rewards.giftcards import codes


@dataclass(frozen=True)
class Subject:
    """One of the three things counted, with its own allowance, failures and lock."""

    kind: str  # "shopper" | "card" | "key"
    id: str
    requests: RateLimiter
    failures: RateLimiter
    lock: RateLimiter


def _subject(config, kind: str, id_: str, per_minute: int, max_failures: int) -> Subject:
    window, lockout = (
        config["GIFT_CARD_FAILURE_WINDOW_MINUTES"],
        config["GIFT_CARD_LOCKOUT_MINUTES"],
    )
    return Subject(
        kind,
        id_,
        requests=limiter(f"{per_minute} per minute", "gift-card-codes", shared=True),
        failures=limiter(f"{max_failures} per {window} minutes", "gift-card-misses", shared=True),
        lock=limiter(f"1 per {lockout} minutes", "gift-card-lock", shared=True),
    )


class CodeGuard:
    """The counts one request that takes a gift card code runs against: `check()` before the
    code is looked at, `failed()` when it is not a live card."""

    def __init__(self, config, code_text: str, secrets: list[str], *, shopper: str, api_key: str):
        # The stored hash for a real code, and a hash all the same for anything else typed: a
        # code that is no card's is counted exactly as one that is.
        card = codes.code_hash(normalize_code(code_text), secrets[-1])
        per_minute = config["GIFT_CARD_LOOKUPS_PER_MINUTE"]
        failures = config["GIFT_CARD_MAX_FAILURES"]
        self.subjects = [
            _subject(config, "shopper", shopper, per_minute, failures),
            _subject(config, "card", card, per_minute, failures),
            _subject(
                config,
                "key",
                api_key,
                config["GIFT_CARD_KEY_LOOKUPS_PER_MINUTE"],
                config["GIFT_CARD_KEY_MAX_FAILURES"],
            ),
        ]

    def check(self) -> None:
        """Refuse while any of the three is locked out or out of allowance; else count this."""
        locked = [s for s in self.subjects if not s.lock.test(s.kind, s.id)]
        if locked:
            raise RateLimited(
                "Too many gift card codes that are not live cards; try again later.",
                retry_after=max(1, *(s.lock.resets_in(s.kind, s.id) for s in locked)),
            )
        spent = [s for s in self.subjects if not s.requests.hit(s.kind, s.id)]
        if spent:
            raise RateLimited(
                "Too many gift card requests; try again later.",
                retry_after=max(1, *(s.requests.resets_in(s.kind, s.id) for s in spent)),
            )

    def failed(self) -> None:
        """A code that is not a live card: a failure for each; a full count locks it out."""
        for s in self.subjects:
            s.failures.hit(s.kind, s.id)
            if not s.failures.test(s.kind, s.id):
                s.lock.hit(s.kind, s.id)
