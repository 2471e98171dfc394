"""`jsontext.canonical` writes exactly what `json.dumps(sort_keys=True, separators=(",", ":"),
default=str)` writes — on random JSON values of every kind the standard library writes, and
on the values our answers hold (dates and times, decimals) — and takes orjson's text where it
is the same."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty import jsontext


def reference(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Point:
    x: int


leaves = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # every code point, control characters, DEL, surrogates' neighbours
    | st.text(st.characters(min_codepoint=0, max_codepoint=0x7F))
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.builds(Point, st.integers())
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
        | st.dictionaries(st.integers(), children, max_size=3)
    ),  # keys json turns into text
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(values)
def test_the_text_is_the_standard_librarys(value):
    assert jsontext.canonical(value) == reference(value)


@pytest.mark.parametrize(
    "value",
    [
        1e-05, 1e-07, 1e16, 0.00001, -0.0, 1.5, 2**64, -(2**63) - 1, "\x7f", "é", "\u2028",
        {"b": 1, "a": [1, 2]}, {1: "x"}, {"k": datetime(2026, 12, 6, 19, 0, tzinfo=UTC)},
        {"d": date(1990, 5, 1)}, Decimal("1.25"), Point(1), "\x00\x1f\"\\/\b\t\n\f\r",
    ],
)  # fmt: skip
def test_the_cases_orjson_writes_otherwise(value):
    assert jsontext.canonical(value) == reference(value)


def test_an_answer_of_plain_values_is_orjsons_text(monkeypatch):
    """The common answer (ASCII text, integers, times with microseconds, no float) is written
    by orjson, not json."""
    earn = {"kind": "earn", "points": 10, "matures_at": "2027-01-05T19:46:45.126695+00:00"}
    answer = {"event_id": "evt_1", "duplicate": False, "member": {"id": "c1"}, "effects": [earn]}
    expected = reference(answer)

    def refuse(*_args, **_kwargs):
        raise AssertionError("json.dumps was called")

    monkeypatch.setattr(jsontext.json, "dumps", refuse)
    assert jsontext.canonical(answer) == expected


def test_the_switch_writes_everything_with_json(monkeypatch):
    monkeypatch.setattr(jsontext, "FAST", False)
    called = []
    real = json.dumps

    def counted(*args, **kwargs):
        called.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsontext.json, "dumps", counted)
    assert jsontext.canonical({"a": 1}) == '{"a":1}' and called
