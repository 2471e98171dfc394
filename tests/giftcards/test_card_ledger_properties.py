"""Property test: any sequence of card operations keeps the card's books straight.

A plain-Python model of the card runs beside the real service; after every step the stored
balance equals the model's, and the card's transactions add up to it.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from loyalty.errors import Conflict, InsufficientFunds, ValidationFailed
from loyalty.program.service import get_program
from loyalty.types import utcnow
from rewards.giftcards import service, throttle
from rewards.giftcards.models import GiftCard, GiftCardTransaction

SECRETS = ["property-secret"]
amounts = st.integers(min_value=1, max_value=4000)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), amounts),
        st.tuples(st.just("capture"), st.integers(0, 9), st.integers(0, 4000)),
        st.tuples(st.just("void"), st.integers(0, 9)),
        st.tuples(st.just("refund"), amounts),
        st.tuples(st.just("adjust"), st.integers(-3000, 3000).filter(bool)),
    ),
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=steps)
def test_any_sequence_of_operations_keeps_the_books(app, session, monkeypatch, operations):
    # The books, not the code limits (every example runs in the test's one transaction).
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", False)
    now = utcnow()
    issued = service.issue_card(
        session, get_program(session), amount=5000, currency="USD", secrets=SECRETS,
        actor="test", now=now,
    )  # fmt: skip
    card_id, code = issued.card.id, issued.code
    balance, holds, captured, refunded = 5000, [], 0, 0  # the model
    for op in operations:
        kind = op[0]
        try:
            if kind == "hold":
                guard = throttle.CodeGuard(app.config, code, SECRETS, shopper="10.0.0.1",
                                           api_key="property")  # fmt: skip
                hold = service.create_hold(session, guard=guard, code_text=code, amount=op[1],
                                           order_id="o", secrets=SECRETS, now=now,
                                           actor="t")  # fmt: skip
                assert op[1] <= balance
                balance -= op[1]
                holds.append([hold.id, op[1], True])
            elif kind in ("capture", "void") and holds:
                hold_id, amount, active = holds[op[1] % len(holds)]
                take = min(op[2], amount) if kind == "capture" and op[2] else amount
                if kind == "capture":
                    service.capture_hold(session, hold_id, take, now, "t")
                else:
                    service.void_hold(session, hold_id, now, "t")
                assert active
                holds[op[1] % len(holds)][2] = False
                used = take if kind == "capture" else 0
                captured += used
                balance += amount - used
            elif kind == "refund":
                service.refund(session, card_id, op[1], "o", now, "t")
                assert op[1] <= captured - refunded
                refunded += op[1]
                balance += op[1]
            elif kind == "adjust":
                service.adjust(session, card_id, op[1], "why", now, "t")
                assert balance + op[1] >= 0
                balance += op[1]
        except InsufficientFunds:
            assert op[1] > balance or -op[1] > balance
        except Conflict:
            assert kind in ("capture", "void") and not holds[op[1] % len(holds)][2]
        except ValidationFailed:
            assert kind == "refund" and op[1] > captured - refunded
        session.expire_all()
        card = session.get(GiftCard, card_id)
        total = session.scalar(
            select(func.sum(GiftCardTransaction.balance_change)).where(
                GiftCardTransaction.card_id == card_id
            )
        )
        assert card.balance == balance == int(total)
        assert card.held_amount == sum(h[1] for h in holds if h[2])
        assert card.captured_amount == captured and card.refunded_amount == refunded
