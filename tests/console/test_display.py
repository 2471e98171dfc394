"""How the console writes and reads money and points."""

import pytest

from console import display


def test_money_is_written_in_major_units_with_the_currency():
    assert display.money(123450, "USD") == "$1,234.50"
    assert display.money(-500, "EUR") == "−€5.00"
    assert display.money(1500, "JPY") == "¥1,500"
    assert display.money(1234, "KWD") == "1.234 KWD"
    assert display.money(None, "USD") == "—"


def test_money_is_read_from_major_units():
    assert display.minor_units("10", "USD") == 1000
    assert display.minor_units(" 1,000.5 ", "USD") == 100050
    assert display.minor_units("", "USD") is None
    assert display.minor_units("1500", "JPY") == 1500
    with pytest.raises(ValueError, match="2 decimals at most"):
        display.minor_units("0.001", "USD")
    for text in ("ten", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="such as 10.00"):
            display.minor_units(text, "USD")
    assert display.major_units(1000, "USD") == "10.00"


def test_points_carry_their_sign():
    assert display.signed_points(250) == "+250"
    assert display.signed_points(-1500) == "−1,500"
    assert display.points(1234567) == "1,234,567"
