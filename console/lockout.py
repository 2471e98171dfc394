"""Failed sign-ins lock out: per account (the email typed) and per client address.

One limiter (loyalty.ratelimit), as pypi/warehouse does it: `check()` tests both counts before
a password is looked at; `failed()` counts a failure on both. A count that is full refuses
every sign-in there — the right password included — until its oldest failure is older than
CONSOLE_SIGN_IN_WINDOW_MINUTES. Counted as `shared` limits: in Redis when configured, else in
the database (a refused request's hits are kept), never in one process's memory.
"""

from flask import current_app, request

from console.accounts import normalize_email
from loyalty.addresses import NotAnAddress, client_key
from loyalty.ratelimit import RateLimiter, limiter


def _limiters() -> tuple[RateLimiter, RateLimiter]:
    config = current_app.config
    window = config["CONSOLE_SIGN_IN_WINDOW_MINUTES"]
    account = limiter(
        f"{config['CONSOLE_SIGN_IN_MAX_FAILURES']} per {window} minutes",
        "console-sign-in-account",
        shared=True,
    )
    address = limiter(
        f"{config['CONSOLE_SIGN_IN_ADDRESS_MAX_FAILURES']} per {window} minutes",
        "console-sign-in-address",
        shared=True,
    )
    return account, address


def _address() -> str:
    try:
        return client_key(request.remote_addr or "")
    except NotAnAddress:
        return "unknown"


def locked_for(email: str) -> int:
    """0 when a sign-in as `email` from this address may be tried; else the whole seconds
    until it may."""
    account, address = _limiters()
    email, here = normalize_email(email), _address()
    waits = []
    if not account.test(email):
        waits.append(account.resets_in(email))
    if not address.test(here):
        waits.append(address.resets_in(here))
    return max(1, *waits) if waits else 0


def failed(email: str) -> None:
    account, address = _limiters()
    account.hit(normalize_email(email))
    address.hit(_address())


def succeeded(email: str) -> None:
    """The account's failures are forgotten (the address's stay counted)."""
    account, _address_limiter = _limiters()
    account.clear(normalize_email(email))
