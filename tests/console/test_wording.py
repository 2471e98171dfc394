"""Earning rules, money and windows in a merchant's words (console.wording)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from console.wording import (
    describe_rule,
    describe_window,
    major_units,
    money,
    parse_money,
    rule_status,
)

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)


def rule(trigger="order", multiplier=None, points=None, starts_at=None, ends_at=None, **conditions):
    return {
        "name": "R",
        "trigger": trigger,
        "multiplier": multiplier,
        "points": points,
        "conditions": conditions,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "active": True,
    }


def words(r, currency="EUR", timezone="UTC"):
    return describe_rule(r, currency, timezone, now=NOW)


MARCH = {"starts_at": datetime(2026, 3, 1, tzinfo=UTC), "ends_at": datetime(2026, 4, 1, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (
            rule(multiplier="2", categories=["skincare"], **MARCH),
            "2× points on skincare, 1–31 March",
        ),
        (rule(multiplier="1.5"), "1.5× points on every order"),
        (rule(multiplier=Decimal("2.0000"), min_spend=5000), "2× points on orders of €50 or more"),
        (rule(multiplier="3", skus=["A1", "B2"]), "3× points on SKU A1 and B2"),
        (
            rule(multiplier="2", categories=["skincare", "makeup"], skus=["A1"], min_spend=2550),
            "2× points on skincare and makeup items with SKU A1 in orders of €25.50 or more",
        ),
        (
            rule(multiplier="2", tiers=["VIB", "Rouge"]),
            "2× points on every order for VIB and Rouge members",
        ),
        (rule("first_order", multiplier="2"), "2× points on a first order"),
        (
            rule("first_order", multiplier="2", categories=["skincare"], min_spend=5000),
            "2× points on skincare in a first order of €50 or more",
        ),
        (
            rule("first_order", points=100, min_spend=5000),
            "100 bonus points on a first order of €50 or more",
        ),
        (rule("first_order", points=1), "1 bonus point on a first order"),
        (rule(points=1500), "1,500 bonus points on every order"),
        (
            rule(points=50, categories=["skincare"], min_spend=10000),
            "50 bonus points on orders of €100 or more with skincare",
        ),
        (rule("signup", points=200), "Signup bonus: 200 points"),
        (rule("signup", points=200, tiers=["VIB"]), "Signup bonus: 200 points for VIB members"),
        (rule("birthday", points=250), "Birthday bonus: 250 points"),
        (
            rule("birthday", points=1, tiers=["A", "B", "C"]),
            "Birthday bonus: 1 point for A, B and C members",
        ),
    ],
)
def test_every_trigger_and_condition_in_plain_words(r, expected):
    assert words(r) == expected


@pytest.mark.parametrize(
    ("starts", "ends", "timezone", "expected"),
    [
        (None, None, "UTC", ""),
        (datetime(2026, 3, 1, tzinfo=UTC), None, "UTC", "from 1 March"),
        (None, datetime(2026, 4, 1, tzinfo=UTC), "UTC", "until 31 March"),
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), "UTC", "1 March"),
        (
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 4, 16, tzinfo=UTC),
            "UTC",
            "1 March – 15 April",
        ),
        (
            datetime(2026, 12, 20, tzinfo=UTC),
            datetime(2027, 1, 6, tzinfo=UTC),
            "UTC",
            "20 December 2026 – 5 January 2027",
        ),
        (
            datetime(2027, 3, 1, tzinfo=UTC),
            datetime(2027, 4, 1, tzinfo=UTC),
            "UTC",
            "1–31 March 2027",
        ),
        (
            datetime(2026, 3, 1, 14, 30, tzinfo=UTC),
            datetime(2026, 3, 8, 14, 30, tzinfo=UTC),
            "UTC",
            "1 March, 14:30 – 8 March, 14:30",
        ),
        # Midnight in the program's zone (Paris is UTC+1 in March), not in UTC.
        (
            datetime(2026, 2, 28, 23, tzinfo=UTC),
            datetime(2026, 3, 31, 22, tzinfo=UTC),
            "Europe/Paris",
            "1–31 March",
        ),
        ("2026-03-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00", "UTC", "1–31 March"),
    ],
)
def test_windows_in_the_programs_time_zone_with_an_exclusive_end(starts, ends, timezone, expected):
    assert describe_window(starts, ends, timezone, NOW) == expected


def test_the_window_can_be_left_out_for_a_list_with_its_own_column():
    r = rule(multiplier="2", categories=["skincare"], **MARCH)
    assert describe_rule(r, "EUR", window=False) == "2× points on skincare"


def test_status_active_paused_scheduled_ended():
    assert rule_status(rule(), NOW) == "active"
    assert rule_status({**rule(), "active": False}, NOW) == "paused"
    assert rule_status(rule(**MARCH), NOW) == "scheduled"
    assert rule_status(rule(ends_at=datetime(2026, 2, 1, tzinfo=UTC)), NOW) == "ended"
    assert rule_status(
        {**rule(ends_at=datetime(2026, 2, 1, tzinfo=UTC)), "active": False}, NOW
    ) == ("ended")


def test_money_both_ways_in_the_currencys_minor_units():
    assert money(35_000, "USD") == "$350"
    assert money(123_456, "EUR") == "€1,234.56"
    assert money(5000, "JPY") == "¥5,000"
    assert money(1500, "CHF") == "15 CHF"
    assert money(1234, "KWD") == "1.234 KWD"
    assert major_units(35_050, "USD") == "350.50" and major_units(None, "USD") == ""
    assert parse_money("350", "USD", "t") == 35_000
    assert parse_money(" $1,000.5 ", "USD", "t") == 100_050
    assert parse_money("", "USD", "t") is None
    assert parse_money("5000", "JPY", "t") == 5000
    with pytest.raises(ValidationError) as error:
        parse_money("12.345", "USD", "threshold")
    assert error.value.messages == {"threshold": ["USD amounts have 2 decimal places."]}
    with pytest.raises(ValidationError) as error:
        parse_money("1.5", "JPY", "t")
    assert error.value.messages == {"t": ["JPY amounts have no decimal places."]}
    for bad in ("abc", "NaN", "Infinity", "1e400000"):
        with pytest.raises(ValidationError):
            parse_money(bad, "USD", "t")


def test_action_rules_in_words():
    def words(points, action_type, caps=None, tiers=None):
        conditions = {"action_type": action_type, **({"tiers": tiers} if tiers else {})}
        rule = {"trigger": "action", "points": points, "conditions": conditions, "caps": caps}
        return describe_rule(rule, "USD")

    assert words(50, "review", {"per_month": 3}) == (
        "50 points per product review, at most 3 a month"
    )
    assert words(100, "social_follow", {"lifetime": 1}) == "100 points once for following us"
    assert words(10, "newsletter_signup") == "10 points per newsletter signup"
    assert words(5, "quiz_done", {"per_day": 1, "per_month": 10, "lifetime": 50}, ["VIB"]) == (
        "5 points per “quiz_done” action for VIB members, at most 1 a day, 10 a month and 50 in all"
    )


def test_lapse_rules_in_words():
    assert words(rule("lapse", points=200, days=90)) == (
        "200 points to members who haven't ordered for 90 days, once each time"
    )
    assert words(rule("lapse", points=1, days=1, tiers=["VIB", "Rouge"], **MARCH)) == (
        "1 point to VIB and Rouge members who haven't ordered for 1 day, once each time, 1–31 March"
    )


def test_a_win_back_award_in_the_members_activity():
    from console.members.activity import explain

    entry = {
        "kind": "bonus",
        "source": {"type": "lapse", "id": "2026-01-01T12:00:00+00:00"},
        "detail": {"rule": "Come back", "trigger": "lapse", "days": 90, "days_without_order": 92,
                   "last_paid_order_at": "2026-01-01T12:00:00+00:00"},
    }  # fmt: skip
    assert explain(entry, "USD") == (
        "Win-back rule “Come back”: no paid order for 92 days (the last on 1 Jan 2026)"
    )
