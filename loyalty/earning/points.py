"""The points arithmetic of orders and bonuses: every number of points the program gives.

Each ledger entry's points are computed on their own, with `Decimal` until the one rounding
(down, to whole points) at the end:

    base points     = floor(E × R × T)
    multiplier rule = floor(M × R × (T × (m − 1)))      a rule "m×", e.g. m = 2 for double
    fixed rule      = p                                   once per matching order (or sign-up,
                                                          or birthday)

where E is the order's eligible amount and M the eligible amount of the lines the rule selects,
both in major units of the currency (minor units × 10^−exponent); R the program's
`points_per_unit`; T the member's tier multiplier (the tier before the event); m, p the rule's
`multiplier` or `points`. A multiplier rule gives the points the base rate does not already
give, so overlapping rules add their extra: 2× and 3× on one line earn (1 + 1 + 2) = 4× the
base, not 6×.

Refunds take back what the order was awarded (base and bonuses, as recorded when earned), in
proportion to the eligible amount refunded, rounded down; the last refund takes the remainder:

    reversed after a refund = floor(A × F / E)   (A when F ≥ E)

where A is the points the order was awarded and F its refunded total, both in minor units.
"""

from decimal import ROUND_FLOOR, Decimal


def _whole_points(value: Decimal) -> int:
    """The one rounding: down to whole points."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _major(amount: int, exponent: int) -> Decimal:
    return Decimal(amount).scaleb(-exponent)


def base_points(
    eligible_amount: int, exponent: int, rate: Decimal, tier_multiplier: Decimal
) -> int:
    """floor(E × R × T): what a paid order earns at the base rate."""
    return _whole_points(_major(eligible_amount, exponent) * rate * tier_multiplier)


def bonus_points(
    matching_amount: int,
    exponent: int,
    rate: Decimal,
    tier_multiplier: Decimal,
    *,
    rule_multiplier: Decimal | None,
    fixed_points: int | None,
) -> int:
    """One order rule's bonus: floor(M × R × (T × (m − 1))) for a multiplier rule, else its
    fixed points."""
    if rule_multiplier is None:
        return fixed_points or 0
    extra = tier_multiplier * (Decimal(rule_multiplier) - 1)
    return _whole_points(_major(matching_amount, exponent) * rate * extra)


def reversed_after_refund(awarded: int, refunded_total: int, eligible_amount: int) -> int:
    """How much of an order's `awarded` points its refunds take back in all (A·F/E, down)."""
    if refunded_total >= eligible_amount:
        return awarded
    return awarded * refunded_total // eligible_amount
