"""What every connector shares: the platform signature and exact money."""

import base64
import hashlib
import hmac

import pytest

from connectors.intake import minor_units, verify_signature
from loyalty.errors import Unauthorized, ValidationFailed


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_any_configured_secret_verifies_and_nothing_else_does():
    body = b'{"id": 1}'
    verify_signature(["old", "new"], body, _sign("old", body))
    verify_signature(["old", "new"], body, _sign("new", body))
    for bad in (None, "", _sign("other", body), _sign("new", body + b" ")):
        with pytest.raises(Unauthorized):
            verify_signature(["old", "new"], body, bad)
    with pytest.raises(Unauthorized):  # no secret configured: nothing verifies
        verify_signature([], body, _sign("", body))


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("12.30", "USD", 1230), ("0.10", "EUR", 10), ("1000", "JPY", 1000), ("1.234", "KWD", 1234),
     ("0", "USD", 0), (None, "USD", 0), ("19.99", "usd", 1999), (12.3, "USD", 1230)],
)  # fmt: skip
def test_decimal_strings_become_minor_units_exactly(amount, currency, minor):
    assert minor_units(amount, currency) == minor


@pytest.mark.parametrize(("amount", "currency"), [("12.345", "USD"), ("1.5", "JPY"), ("abc", "USD"),
                                                  ("NaN", "USD"), ("Infinity", "USD")])  # fmt: skip
def test_amounts_the_currency_cannot_hold_are_refused(amount, currency):
    with pytest.raises(ValidationFailed):
        minor_units(amount, currency, "total_price")


@pytest.mark.parametrize(
    "amount",
    # Decimal's own signals (a 500 before), a tiny exponent it flushed to 0,
    # and what Decimal reads but no platform writes.
    ["sNaN", "1e999999999", "1e-999999999", "1_000.00",
     "\u0661\u0662.\u0663\u0660", " 1.00", "1e2", "0x10", True, 1e-05],
)  # fmt: skip
def test_only_plain_decimals_are_read_and_never_rounded(amount):
    with pytest.raises(ValidationFailed):
        minor_units(amount, "USD", "price")


def test_large_amounts_convert_digit_for_digit():
    assert minor_units("12345678901234567890123456789.01", "USD") == (
        1234567890123456789012345678901
    )
    assert minor_units("99999999999999999999999999999.99", "USD") == 10**31 - 1
    assert minor_units("-5.10", "USD") == -510
    assert minor_units("7.000", "JPY") == 7
    assert minor_units(20, "USD") == 2000
