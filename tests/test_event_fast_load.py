"""`load_event`'s fast path gives exactly what `EventSchema().load` gives, or declines.

Events go through both: a valid one with each field in turn set to a value at or past its
bounds, of another type, or left out (and an unknown key added); and random valid events with
a few such changes. The fast path either declines (None) or returns what marshmallow returns
(the same values, keys in the same order), and marshmallow never refuses an event the fast
path took; an event marshmallow takes is taken by the fast path too, unless it holds what JSON
has not (bytes, a datetime object) or a refund."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as outcome
from hypothesis import strategies as st
from marshmallow import ValidationError

from loyalty.orders import schemas
from loyalty.orders.schemas import EVENT_TYPES, EventSchema, load_event
from loyalty.schemas import MAX_MONEY, MAX_QUANTITY
from tests import factories as f
from tests.conftest import make_app

LIMIT = 80_000  # MAX_ORDER_AMOUNT here: random orders cross it now and then


@pytest.fixture(scope="module", params=[LIMIT, 10**15])
def app(request, tmp_path_factory):
    """An app (its database unused) whose MAX_ORDER_AMOUNT is low, or above MAX_MONEY."""
    path = tmp_path_factory.mktemp("fast_load") / "unused.sqlite3"
    made = make_app(f"sqlite:///{path}", MAX_ORDER_AMOUNT=request.param)
    with made.app_context():
        yield made


def ordered(value):
    """`value` with every dict as its list of items: equal only with keys in the same order."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return (type(value), value)


def marshmallow_load(event):
    try:
        return EventSchema().load(event)
    except ValidationError:
        return None


# --- values at and past each field's bounds -------------------------------------------------

DROP = object()  # the key left out
ODD_TYPES = [None, True, 1, 1.0, "1", b"x", [], {}]
IDS = ["", "i", "a" * 128, "a" * 129, "é-ü", " ", "a\nb"]
TEXTS = ["", "t" * 128, "t" * 129]
MONEY = [0, -1, 5, LIMIT, LIMIT + 1, MAX_MONEY, MAX_MONEY + 1]
CODES = [[], ["c"] * 20, ["c"] * 21, [""], ["a" * 129], [1], "c"]


class Soon:
    """A moment `minutes` from when the event is made (the schema refuses more than 5 ahead):
    its ISO text, or the datetime itself."""

    def __init__(self, minutes: int, text: bool = True):
        self.minutes, self.text = minutes, text

    def moment(self):
        moment = datetime.now(UTC) + timedelta(minutes=self.minutes)
        return moment.isoformat() if self.text else moment


SOON = [Soon(-1), Soon(4), Soon(6), Soon(-1, text=False)]
EDGES = {
    "event": {
        "id": IDS, "type": [*EVENT_TYPES, "order.x", "ORDER.PAID"],
        "occurred_at": [
            "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+05:30", "2026-01-01T00:00:00",
            "2026-01-01", "2026-01-01 10:00:00+02:00", "20260101T100000Z",
            "2026-W01-1T00:00:00Z", "0001-01-01T00:30:00+01:00", "0001-01-01T00:30:00-01:00",
            "9999-12-31T23:59:59-01:00", "", " 2026-01-01T00:00:00Z",
            *SOON,
        ],
        "refund": [{"id": "r", "amount": 1}], "order": [[], "o"], "extra": [1],
    },
    "order": {
        "id": IDS, "customer_id": [*IDS, ".", "..", "a/b", "a\\b", "\u200b", "..."],
        "email": [None, "a@example.com", "A.B+c@Example.COM", "not-an-email", "a@b",
                  "ü@example.com", "a" * 64 + "@example.com", "a" * 65 + "@example.com"],
        "name": [None, "", "n" * 200, "n" * 201],
        "currency": ["EUR", "usd", "USD\n", "US", "USDD", ""],
        "lines": [[], [{"sku": "s", "quantity": 1, "unit_price": 1}] * 500,
                  [{"sku": "s", "quantity": 1, "unit_price": 1}] * 501, [5], "l",
                  [{"sku": "s", "quantity": 3, "unit_price": LIMIT // 2, "discount": LIMIT}],
                  [{"sku": "s", "quantity": 1, "unit_price": LIMIT}]],
        "shipping": MONEY, "tax": MONEY, "reward_codes": CODES, "gift_card_holds": CODES,
        "referral_code": [None, *IDS], "shipping_address_hash": [None, *TEXTS],
        "payment_fingerprint": [None, *TEXTS],
        "ip": [None, "1.2.3.4", "::1", "2001:DB8::1", "::ffff:1.2.3.4", "01.2.3.4",
               "1.2.3.4:80", "localhost", ""],
        "extra": [1],
    },
    "line": {
        "sku": IDS, "quantity": [0, 1, MAX_QUANTITY, MAX_QUANTITY + 1],
        "unit_price": MONEY, "discount": [0, 1, 20_000, 20_001, -1],
        "category": [None, *TEXTS], "gift_card": [True, False], "extra": [1],
    },
}  # fmt: skip
CHANGES = [
    (where, key, value)
    for where, keys in EDGES.items()
    for key, values in keys.items()
    for value in [*values, *ODD_TYPES, DROP]
]


def base_event() -> dict:
    """A valid event at every field's usual values (each field given)."""
    return {
        "id": "e_1", "type": "order.paid", "occurred_at": "2026-01-01T10:00:00+02:00",
        "order": {
            "id": "o_1", "customer_id": "c_1", "email": "ann@example.com", "name": "Ann",
            "currency": "USD",
            "lines": [{"sku": "S1", "quantity": 2, "unit_price": 10_000, "discount": 0,
                       "category": "shoes", "gift_card": False}],
            "shipping": 500, "tax": 0, "reward_codes": ["R1"], "referral_code": "REF",
            "gift_card_holds": [], "shipping_address_hash": "h", "payment_fingerprint": "p",
            "ip": "1.2.3.4",
        },
    }  # fmt: skip


def change(event: dict, where: str, key: str, value, line: int = 0) -> None:
    """`key` of the event, its order or one of its lines set to `value` (or left out), when
    the event still has that object."""
    target = event if where == "event" else event.get("order")
    if where == "line":
        lines = target.get("lines") if isinstance(target, dict) else None
        target = lines[line % len(lines)] if isinstance(lines, list) and lines else None
    if not isinstance(target, dict):
        return
    if isinstance(value, Soon):
        value = value.moment()
    if value is DROP:
        target.pop(key, None)
    else:
        target[key] = value


def check(event) -> tuple[dict | None, dict | None]:
    """The fast path declines, or gives exactly what marshmallow gives (marshmallow accepting
    the event). Both results."""
    expected = marshmallow_load(event)
    fast = schemas._fast_event(event)
    if fast is not None:
        assert expected is not None, "the fast path took an event marshmallow refuses"
        assert ordered(fast) == ordered(expected)
    return fast, expected


def test_the_base_event_takes_the_fast_path(app):
    fast, expected = check(base_event())
    assert fast is not None and expected is not None


@pytest.mark.parametrize(("where", "key", "value"), CHANGES)
def test_each_value_at_or_past_a_bound_loads_as_marshmallow_loads_it(app, where, key, value):
    event = base_event()
    change(event, where, key, value)
    fast, expected = check(event)
    # What marshmallow takes, the fast path takes, but for a refund and values JSON has not.
    plain = not isinstance(value, bytes | datetime) and not (
        isinstance(value, Soon) and not value.text
    )
    if expected is not None and key != "refund" and plain:
        assert fast is not None, "a valid event of the common shape declined"


# --- random events ---------------------------------------------------------------------------

printable = st.characters(categories=["L", "N", "P", "S"])
ids = st.text(printable, min_size=1, max_size=12)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(2026, 1, 1),
    timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                                max_value=timedelta(hours=23, minutes=59))),
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))  # fmt: skip
texts = st.none() | st.text(max_size=5)
line = st.fixed_dictionaries(
    {"sku": ids, "quantity": st.integers(1, 5), "unit_price": st.integers(0, 20_000)},
    optional={"discount": st.integers(0, 100), "category": texts, "gift_card": st.booleans()},
)  # fmt: skip
order = st.fixed_dictionaries(
    {"id": ids, "customer_id": ids, "currency": st.sampled_from(["USD", "EUR"]),
     "lines": st.lists(line, min_size=1, max_size=3)},
    optional={
        "email": st.none() | st.emails(), "name": texts,
        "shipping": st.integers(0, 2000), "tax": st.integers(0, 2000),
        "reward_codes": st.lists(ids, max_size=3), "gift_card_holds": st.lists(ids, max_size=3),
        "referral_code": st.none() | ids, "shipping_address_hash": texts,
        "payment_fingerprint": texts, "ip": st.sampled_from([None, "1.2.3.4", "::1"]),
    },
)  # fmt: skip
events = st.fixed_dictionaries(
    {"id": ids, "type": st.sampled_from(["order.paid", "order.paid", "order.canceled"]),
     "occurred_at": moments, "order": order},
)  # fmt: skip
changes = st.lists(st.tuples(st.sampled_from(CHANGES), st.integers(0, 2)), max_size=3)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events, changed=changes)
def test_the_fast_path_gives_what_marshmallow_gives_or_declines(app, event, changed):
    for (where, key, value), line_number in changed:
        change(event, where, key, value, line_number)
    fast, expected = check(event)
    outcome(
        f"fast path {'took' if fast is not None else 'declined'}, marshmallow "
        f"{'accepted' if expected is not None else 'refused'}"
    )
    if not changed:
        assert fast is not None or expected is None, "a valid event of the common shape declined"


def test_common_events_take_the_fast_path_and_load_as_the_schema_does(app, monkeypatch):
    common = [
        f.paid("c_1", "o_1", lines=[f.line(category="shoes"), f.line("S2", gift_card=True)],
               email="Ann@Example.com", shipping=500, tax=20, ip="2001:DB8::1",
               reward_codes=["R1"], referral_code="REF", name="Ann"),
        f.paid("c_2", "o_2"),
        {**f.paid("c_3", "o_3"), "type": "order.canceled"},
    ]  # fmt: skip
    expected = [EventSchema().load(event) for event in common]
    monkeypatch.setattr(schemas._EVENT, "load", lambda *_a, **_k: pytest.fail("marshmallow"))
    loaded = [load_event(event) for event in common]
    assert [ordered(one) for one in loaded] == [ordered(one) for one in expected]
    assert loaded[0]["order"]["ip"] == "2001:db8::1"  # the field's own conversion


def test_a_refused_event_gets_marshmallows_messages(app):
    event = f.paid("c_1", "o_1", lines=[f.line(quantity=0)])
    with pytest.raises(ValidationError) as refused:
        load_event(event)
    with pytest.raises(ValidationError) as expected:
        EventSchema().load(event)
    assert refused.value.messages == expected.value.messages


def test_a_value_of_another_type_is_marshmallows_to_load(app):
    # marshmallow's String takes bytes (a mapping's event may hold them): not the fast path.
    event = {**f.paid("c_1", "o_1"), "id": b"e_1"}
    assert schemas._fast_event(event) is None
    assert load_event(event)["id"] == "e_1"
    with pytest.raises(ValidationError) as refused:
        load_event(f.paid("c_1", "o_1", lines=[f.line(quantity=True)]))
    assert refused.value.messages == {
        "order": {"lines": {0: {"quantity": ["Not a valid integer."]}}}
    }


def test_switched_off_every_event_goes_through_marshmallow(app, monkeypatch):
    monkeypatch.setitem(app.config, "EVENT_FAST_VALIDATION", False)
    monkeypatch.setattr(schemas, "_fast_event", lambda _event: pytest.fail("fast path"))
    assert load_event(f.paid("c_1", "o_1"))["order"]["id"] == "o_1"
