"""Hypothesis settings shared by the tests that generate requests from /openapi.json, and
strategies for the hostile values those requests carry."""

import base64
import json
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def generated_requests(max_examples: int) -> settings:
    """Reproducible (derandomized, no example database) and without a deadline or health
    checks: a generated request may touch the database, or be refused most of the time."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


# --- hostile shapes: values that once reached a 500 from any JSON body or page cursor --------


@dataclass(frozen=True)
class Shape:
    """A value to put somewhere into a generated request.

    `kind` says where it goes: "json" anywhere in a JSON body, as raw JSON text (`text`);
    "time" in place of a date-time, "member_id" in place of a customer id (as strings);
    "cursor" as the `cursor` query parameter. `refused`: wherever it goes it must be a 422
    (for "time" and "member_id": a 4xx where such a value belongs). `where`: the name the
    422 gives it when that is not the place it was put ("json" for nesting).
    """

    kind: str
    text: str
    refused: bool = True
    where: str | None = None


def _deep(levels: int) -> Shape:
    return Shape("json", "[" * levels + "]" * levels, where="json")


def _escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


def _lone_surrogate(parts) -> Shape:
    before, code, after = parts
    return Shape("json", f'"{_escaped(before)}\\u{code:04x}{_escaped(after)}"')


def _no_utc_spelling(parts) -> Shape:
    """A time whose offset takes it before year 1 or after year 9999 in UTC."""
    early, minute_of_day, spare = parts
    if early:  # 0001-01-01 at `minute_of_day`, the offset ahead of it by `spare` more minutes
        offset = minute_of_day + spare
        moment = f"0001-01-01T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:00"
        sign = "+"
    else:  # 9999-12-31, the offset behind by more than what is left of the day
        offset = 24 * 60 - minute_of_day + spare
        moment = f"9999-12-31T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:00"
        sign = "-"
    return Shape("time", f"{moment}{sign}{offset // 60:02d}:{offset % 60:02d}")


def _encoded(number: int) -> str:
    return base64.urlsafe_b64encode(str(number).encode()).decode().rstrip("=")


_TEXT = st.text(max_size=8)
JSON_SHAPES = st.one_of(
    st.integers(33, 1_000).map(_deep),
    st.integers(33, 400).map(lambda n: Shape("json", '{"a":' * n + "1" + "}" * n, where="json")),
    st.tuples(st.sampled_from(["", "-"]), st.integers(1, 9), st.integers(20, 5_000)).map(
        lambda t: Shape("json", f"{t[0]}{t[1]}{'7' * t[2]}")
    ),
    st.tuples(_TEXT, st.integers(0xD800, 0xDFFF), _TEXT).map(_lone_surrogate),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-2E+999", "1" * 400 + ".5"]).map(
        lambda text: Shape("json", text)
    ),
)
TIME_SHAPES = st.one_of(
    st.tuples(st.booleans(), st.integers(0, 14 * 60 - 1), st.integers(1, 60)).filter(
        # An offset stays within ±24:00.
        lambda t: (t[1] + t[2] if t[0] else 24 * 60 - t[1] + t[2]) < 24 * 60
    ).map(_no_utc_spelling),
    # The first and last instants that do have a UTC spelling: whatever answers, not a 500.
    st.sampled_from(
        ["0001-01-01T00:00:00Z", "0001-01-01T14:00:00+14:00", "9999-12-31T23:59:59Z",
         "9999-12-31T09:59:59-14:00", "1970-01-01T00:00:00-00:00"]
    ).map(lambda text: Shape("time", text, refused=False)),
)  # fmt: skip
MEMBER_ID_SHAPES = st.one_of(
    st.sampled_from([".", ".."]),
    st.tuples(_TEXT, st.sampled_from(["/", "\\", "\t", "\n", "\x7f", "\u200b", "\u2028"]), _TEXT)
    .map("".join)
    .filter(lambda text: len(text) <= 128),
).map(lambda text: Shape("member_id", text))
CURSOR_SHAPES = st.one_of(
    st.integers(2**63, 10**60).map(_encoded),
    st.integers(-(10**30), 0).map(_encoded),
    st.sampled_from(["!!!", "%%", "MQ==x", _encoded(10**30) + "*"]),
    st.text(alphabet="0123456789 +-_", min_size=1, max_size=30)
    .filter(lambda text: not text.isdigit() or int(text) == 0 or len(text) > 19)
    .map(lambda text: base64.urlsafe_b64encode(text.encode()).decode()),
).map(lambda text: Shape("cursor", text))
