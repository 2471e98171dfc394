"""`load_event`'s fast path gives exactly what `EventSchema().load` gives, or declines.

Random events — valid ones of every shape the schema takes, and the same with a value made
odd (another type, out of bounds, an unknown key, a key left out) — go through both: the fast
path either declines (None) or returns what marshmallow returns (the same values, keys in the
same order), and marshmallow never refuses an event the fast path took. A valid event of the
common shape (no refund, no value changed) is always taken by the fast path."""

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

LIMIT = 250_000  # MAX_ORDER_AMOUNT here: random orders cross it now and then
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast_load") / "unused.sqlite3"
    made = make_app(f"sqlite:///{path}", MAX_ORDER_AMOUNT=LIMIT)
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


# --- random events ---------------------------------------------------------------------------


def random_events(edgy: bool):
    """Events of every shape the schema takes; `edgy`: a value now and then at or past a bound,
    or of a form the field may refuse."""

    def mostly(valid, edges):
        return st.one_of(valid, valid, valid, edges) if edgy else valid

    printable = st.characters(categories=["L", "N", "P", "S"])
    ids = mostly(
        st.text(printable, min_size=1, max_size=12),
        st.text(min_size=1, max_size=3) | st.sampled_from(["a" * 128, "é-ü", "a b", ".x"]),
    )
    customer_ids = mostly(ids, st.sampled_from([".", "..", "a/b", "a\\b", "a\nb", "\u200b"]))
    small_money = mostly(st.integers(0, 20_000), st.sampled_from([0, LIMIT, LIMIT + 1]))
    offsets = st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                max_value=timedelta(hours=23, minutes=59))
    )  # fmt: skip
    moments = st.one_of(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(2026, 1, 1),
                     timezones=offsets),
        st.datetimes(min_value=(NOW - timedelta(minutes=10)).replace(tzinfo=None),
                     max_value=(NOW + timedelta(minutes=20)).replace(tzinfo=None),
                     timezones=st.just(UTC) | offsets),
    ).map(lambda moment: moment.isoformat())  # fmt: skip
    moments = mostly(
        moments | moments.map(lambda text: text.replace("+00:00", "Z")),
        st.datetimes().map(lambda naive: naive.isoformat())
        | st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat())
        | st.sampled_from(["2026-01-01", "2026-01-01T00:00:00", "0001-01-01T00:30:00+01:00",
                           "9999-12-31T23:59:59-01:00", "2026-01-01 10:00:00+02:00",
                           "20260101T100000Z", "2026-W01-1T00:00:00Z", "", " 2026-01-01T00:00Z"]),
    )  # fmt: skip
    optional_text = mostly(st.none() | st.text(max_size=5), st.sampled_from(["x" * 128, "x" * 129]))

    line = st.fixed_dictionaries(
        {"sku": ids, "quantity": mostly(st.integers(1, 5), st.just(MAX_QUANTITY)),
         "unit_price": small_money},
        optional={"discount": mostly(st.integers(0, 100), small_money), "category": optional_text,
                  "gift_card": st.booleans()},
    )  # fmt: skip
    codes = mostly(st.lists(ids, max_size=3), st.lists(ids, min_size=19, max_size=21))
    order = st.fixed_dictionaries(
        {"id": ids, "customer_id": customer_ids, "currency": st.sampled_from(["USD", "EUR"]),
         "lines": st.lists(line, min_size=1, max_size=3)},
        optional={
            "email": mostly(st.none() | st.emails(), st.sampled_from(
                ["A@Example.COM", "not-an-email", "a@b", "x" * 310 + "@example.com"]
            )),
            "name": mostly(st.none() | st.text(max_size=5), st.just("n" * 201)),
            "shipping": small_money, "tax": small_money,
            "reward_codes": codes, "gift_card_holds": codes, "referral_code": st.none() | ids,
            "shipping_address_hash": optional_text, "payment_fingerprint": optional_text,
            "ip": mostly(st.sampled_from([None, "1.2.3.4", "::1", "2001:DB8::1"]),
                         st.sampled_from(["01.2.3.4", "1.2.3.4:80", "localhost", ""])),
        },
    )  # fmt: skip
    events = st.fixed_dictionaries(
        {
            "id": ids,
            "type": mostly(st.just("order.paid"), st.sampled_from(EVENT_TYPES)),
            "occurred_at": moments,
            "order": order,
        },
        optional={"refund": st.fixed_dictionaries({"id": ids, "amount": small_money})},
    )
    return events


events = random_events(False) | random_events(True)

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.integers(MAX_MONEY - 1, MAX_MONEY + 1),
    st.floats(allow_nan=False), st.text(max_size=3), st.binary(max_size=3),
    st.just([]), st.just({}), st.lists(st.integers(0, 3), max_size=2),
    st.sampled_from(["USD\n", "usd", "a" * 129, "a" * 128, ".", "2026-01-01T00:00:00",
                     "::1", "x@example.com", "order.paid", "USD"]),
)  # fmt: skip
KEYS = {
    "event": ("id", "type", "occurred_at", "order", "refund", "extra"),
    "order": tuple(schemas.OrderSchema._declared_fields) + ("extra",),
    "line": tuple(schemas.LineSchema._declared_fields) + ("extra",),
}
changes = st.just([]) | st.lists(
    st.tuples(st.sampled_from(sorted(KEYS)), st.data(), st.booleans(), ODD), min_size=1, max_size=2
)


def changed(event: dict, where: str, data, drop: bool, value) -> None:
    """One key of the event, its order or a line, dropped or given an odd value."""
    target = event if where == "event" else event.get("order")
    if where == "line":
        lines = target.get("lines") if isinstance(target, dict) else None
        if not isinstance(lines, list) or not lines:
            return
        target = data.draw(st.sampled_from(lines))
    if not isinstance(target, dict):
        return
    key = data.draw(st.sampled_from(KEYS[where]))
    if drop:
        target.pop(key, None)
    else:
        target[key] = value


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events, odd=changes)
def test_the_fast_path_gives_what_marshmallow_gives_or_declines(app, event, odd):
    for where, data, drop, value in odd:
        changed(event, where, data, drop, value)
    expected = marshmallow_load(event)
    fast = schemas._fast_event(event)
    outcome(
        f"fast path {'took' if fast is not None else 'declined'}, marshmallow "
        f"{'accepted' if expected is not None else 'refused'}"
    )
    if fast is not None:
        assert expected is not None, "the fast path took an event marshmallow refuses"
        assert ordered(fast) == ordered(expected)
    elif not odd and "refund" not in event:
        assert expected is None, "a valid event of the common shape declined"


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
