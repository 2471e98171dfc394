"""The points arithmetic (loyalty/earning/points.py): each formula, rounded once, down."""

from decimal import Decimal

from loyalty.earning.points import base_points, bonus_points, reversed_after_refund


def test_base_points_are_spend_in_major_units_times_rate_and_tier_rounded_down():
    assert base_points(12_345, 2, Decimal(1), Decimal(1)) == 123  # 123.45 → 123
    assert base_points(10_000, 2, Decimal("1.5"), Decimal("1.25")) == 187  # 187.5 → 187
    assert base_points(999, 0, Decimal(1), Decimal(1)) == 999  # JPY: no minor units
    assert base_points(1_500, 3, Decimal(2), Decimal(1)) == 3  # BHD: three decimals
    assert base_points(99, 2, Decimal(1), Decimal(1)) == 0


def test_a_multiplier_rule_gives_what_the_base_rate_does_not():
    # "2×" on 100.00 at ×1.25: the base gives 125, the rule 125 more (not 250).
    assert (
        bonus_points(
            10_000, 2, Decimal(1), Decimal("1.25"), rule_multiplier=Decimal(2), fixed_points=None
        )
        == 125
    )
    # "1.5×" on 33.33: 33.33 × 0.5 = 16.665 → 16, rounded once.
    assert (
        bonus_points(
            3_333, 2, Decimal(1), Decimal(1), rule_multiplier=Decimal("1.5"), fixed_points=None
        )
        == 16
    )


def test_a_fixed_rule_gives_its_points_whatever_the_amount():
    assert bonus_points(1, 2, Decimal(1), Decimal(3), rule_multiplier=None, fixed_points=50) == 50


def test_refunds_take_back_in_proportion_and_the_last_takes_the_rest():
    assert reversed_after_refund(301, 5_000, 10_000) == 150  # 150.5 → 150
    assert reversed_after_refund(301, 9_999, 10_000) == 300
    assert reversed_after_refund(301, 10_000, 10_000) == 301
    assert reversed_after_refund(301, 0, 10_000) == 0
