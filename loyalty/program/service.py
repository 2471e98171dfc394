from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from loyalty import cache
from loyalty.audit import record_change
from loyalty.errors import Conflict, CurrencyMismatch, ValidationFailed
from loyalty.hooks import Hooks
from loyalty.orders.models import Order
from loyalty.program.models import CHECKOUT_POINTS_COLUMNS, PROGRAM_ID, Program
from loyalty.program.schemas import ProgramSchema

# ISO 4217 minor units for currencies that do not have two.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


cache.watch(Program, "program")


@dataclass(frozen=True)
class ProgramSettings:
    """The program row as plain values: what order events read, from the per-worker cache."""

    id: int
    currency: str
    timezone: str
    points_per_unit: Decimal
    pending_days: int
    expiry_inactive_days: int | None
    qualifying_period: str
    auto_enroll: bool
    widget_origins: tuple[str, ...]
    updated_at: datetime


def program_settings(session: Session) -> ProgramSettings:
    """The program's settings, cached per worker (see loyalty.cache): a change through this
    worker or another is seen by their next request."""

    def load() -> ProgramSettings:
        p = get_program(session)
        return ProgramSettings(
            p.id, p.currency, p.timezone, p.points_per_unit, p.pending_days,
            p.expiry_inactive_days, p.qualifying_period, p.auto_enroll,
            tuple(p.widget_origins or ()), p.updated_at,
        )  # fmt: skip

    return cache.cached(session, "program", PROGRAM_ID, load)


def get_program(session: Session, *, for_update: bool = False) -> Program:
    program = session.get(Program, PROGRAM_ID, with_for_update=for_update or None)
    if program is None:  # the first migration inserts it; only a hand-edited database lacks it
        raise RuntimeError("program row missing: run `flask --app wsgi db upgrade`")
    return program


def check_currency(program: Program | ProgramSettings, currency: str) -> None:
    if currency != program.currency:
        raise CurrencyMismatch(
            f"This program runs in {program.currency}; got {currency}.",
            expected=program.currency,
        )


def money_in_currency(session: Session, hooks: Hooks) -> bool:
    """Orders, or any domain's money (gift cards...), already recorded in the program currency."""
    if session.scalar(select(exists().where(Order.id.is_not(None)))):
        return True
    return any(check(session) for check in hooks.money_in_currency)


def update_program(session: Session, changes: dict, has_activity: Callable[[], bool]) -> Program:
    """Change the program's settings (audited as the API shows them)."""
    before = ProgramSchema().dump(get_program(session))
    program = get_program(session, for_update=True)
    if "currency" in changes and changes["currency"] != program.currency and has_activity():
        raise Conflict("The currency can't change once orders or gift cards exist.")
    changes = dict(changes)
    checkout = {**vars(program.checkout_points), **changes.pop("checkout_points", {})}
    if checkout["min_points"] % checkout["step"]:
        raise ValidationFailed(
            errors={"checkout_points": {"min_points": ["Must be a multiple of step."]}}
        )
    for name, value in checkout.items():
        setattr(program, CHECKOUT_POINTS_COLUMNS[name], value)
    for name, value in changes.items():
        setattr(program, name, value)
    session.flush()
    record_change(session, "program.update", "program", "1", before, ProgramSchema().dump(program))
    return program
