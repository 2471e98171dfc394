"""The demo card `make run` adds: a known code, so the README walkthrough can use it."""

from flask import current_app
from sqlalchemy.orm import Session

from loyalty.program.service import get_program
from loyalty.types import utcnow
from rewards.giftcards import codes, service

# Public on purpose (demo data only): the code of the demo card, 50.00 in the program currency.
DEMO_CODE = "DEM0G1FTCARD2026"
DEMO_AMOUNT = 5000


def seed_demo_card(session: Session) -> None:
    secrets = current_app.config["SECRET_KEYS"]
    program = get_program(session)
    issued = service.issue_card(
        session, program, amount=DEMO_AMOUNT, currency=program.currency, secrets=secrets,
        actor="demo.seed", now=utcnow(), note="Demo card (code in README)",
    )  # fmt: skip
    # Give it the documented code instead of the random one (stored, like any code, as a hash).
    issued.card.code_hash = codes.code_hash(DEMO_CODE, secrets[-1])
    issued.card.last4 = DEMO_CODE[-4:]
    session.flush()
