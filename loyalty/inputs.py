"""Limits on every request's input that no schema sees, checked before any view runs.

- Ids in paths are row ids: `<int:...>` is 1 to 2**63 - 1 (a BIGINT column), `<int32:...>`
  1 to 2**31 - 1 (an INTEGER column). Any other number is no row's id, so the route does not
  match and the answer is a 404, instead of an overflow in the driver (SQLite) or an "out of
  range" error from the database (PostgreSQL) that would surface as a 500.
- No NUL character (U+0000) anywhere a value can come from: the path, the query string, the
  JSON body and the headers that are stored. PostgreSQL cannot store it in text or JSON; it
  is never part of a real id, email or name. A 422 names where it was.
- A JSON body is no deeper than `MAX_JSON_DEPTH`, has no integer of more than
  `MAX_JSON_INTEGER_DIGITS` digits, no NaN or Infinity, no number too large for a float, and
  no lone surrogate (`"\\ud800"` unpaired) in a string or key: Python's parser would fail on the
  first two (a RecursionError, a ValueError past 4,300 digits), and no database or JSON
  encoder can store the others. Each is a 422 naming where it was.
"""

import json
import math
import re
from itertools import accumulate

from flask import Flask, current_app, request
from werkzeug.routing import IntegerConverter

from loyalty.errors import ValidationFailed

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
NUL = "\x00"
STORED_HEADERS = (("Idempotency-Key", "HTTP_IDEMPOTENCY_KEY"), ("User-Agent", "HTTP_USER_AGENT"))
# Signed events (Stripe's, the stores'): refusing one for a NUL in a field the app never reads
# would refuse it on every retry (a paid gift card never issued, an order never credited); the
# views read only what they store, and clean that.
UNCHECKED_BODIES = ("/v1/webhooks/", "/v1/connectors/")
MESSAGE = "NUL characters (U+0000) are not allowed."
SURROGATE_MESSAGE = "Unpaired surrogate characters (U+D800 to U+DFFF) are not allowed."
NON_FINITE_MESSAGE = "Not a finite number."
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a pair decodes to one character, never these
# A JSON string, so that brackets and digits inside strings are not read as structure.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))  # +1, -1
# Digits as 9, exponent marks as e, signs as +, anything else as a space.
_NUMBER_SHAPE = bytes(
    ord("9") if 48 <= b <= 57 else ord("e") if b in b"eE" else ord("+") if b in b"+-" else 32
    for b in range(256)
)


class IdConverter(IntegerConverter):
    """`<int:name>`: the id of a row in a BIGINT-keyed table."""

    MAX = INT64_MAX

    def __init__(self, url_map, fixed_digits=0, min=1, max=None, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits, min, self.MAX if max is None else max, signed)


class Int32IdConverter(IdConverter):
    """`<int32:name>`: the id of a row in an INTEGER-keyed table (tiers, rules, rewards...)."""

    MAX = INT32_MAX


def register_converters(app: Flask) -> None:
    """Before any blueprint: a rule takes its converters when it is added."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["int32"] = Int32IdConverter


class _Refused:
    """Put by the parser where a number it cannot keep was: the walk reports its path."""

    def __init__(self, message: str):
        self.message = message


def _refused_in(value, where: str) -> tuple[str, str] | None:
    """(dotted path, message) of the first value the body may not hold, or None.

    A loop over a stack rather than recursion: the depth was bounded before parsing, but a
    wide body should not cost a call per value either.
    """
    stack = [(value, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                return where, problem
        elif isinstance(value, _Refused):
            return where, value.message
        elif isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            found = []
            for key, item in items:
                path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (problem := _string_problem(key)):
                    return path, problem
                found.append((item, path))
            stack.extend(reversed(found))  # the first offending value in document order
    return None


def _string_problem(text: str) -> str | None:
    if NUL in text:
        return MESSAGE
    if LONE_SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def json_depth_above(data: bytes, limit: int) -> bool:
    """Is this JSON text nested more than `limit` arrays or objects deep?

    Without parsing (the parser recurses per level, and would fail past about a thousand):
    strings removed, every bracket counted +1 or -1 and summed as it comes, at C speed. The
    running sum is the depth the parser reaches, even in text that turns out not to be JSON.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    steps = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKET).translate(_STEP)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


def _suspect(data: bytes, max_digits: int) -> bool:
    """Might this body hold what `checked_json` refuses (or text that only looks like it)? A
    quick look at its bytes, so that most bodies are never parsed twice: a run of digits
    longer than allowed, a 3-digit exponent, NaN or Infinity, a \\u escape (NUL, surrogates)."""
    if b"\\u" in data or b"NaN" in data or b"Infinity" in data:
        return True
    shape = data.translate(_NUMBER_SHAPE)
    return b"9" * (max_digits + 1) in shape or b"e999" in shape or b"e+999" in shape


def checked_json(data: bytes, max_digits: int):
    """The body parsed with its numbers kept in range: an integer of too many digits, a
    non-finite number or NaN/Infinity becomes a `_Refused` where it was. Raises ValueError
    (including UnicodeDecodeError) for text that is not JSON."""

    def parse_int(text: str):
        if len(text.lstrip("-")) > max_digits:
            return _Refused(f"Integers have at most {max_digits} digits.")
        return int(text)

    def parse_float(text: str):
        number = float(text)
        return number if math.isfinite(number) else _Refused(NON_FINITE_MESSAGE)

    def parse_constant(_name: str):
        return _Refused(NON_FINITE_MESSAGE)

    return json.loads(
        data, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
    )


def check_json_body(data: bytes, max_depth: int, max_digits: int) -> None:
    """422 for a JSON body the app could not parse or keep safely (see the module docstring)."""
    if json_depth_above(data, max_depth):
        message = f"Nested more than {max_depth} levels deep."
        raise ValidationFailed(message, errors={"json": [message]})
    if not _suspect(data, max_digits):
        return
    try:
        body = checked_json(data, max_digits)
    except ValueError:
        return  # not JSON: the view's parser answers that
    found = _refused_in(body, "")
    if found is not None:
        where, message = found
        raise ValidationFailed(message, errors={where or "json": [message]})


def refuse_bad_input() -> None:
    """`before_request`: a 422 for a NUL in the path, query or a stored header, and for a
    JSON body `check_json_body` refuses.

    On every request, so it reads the WSGI environ directly and parses a JSON body again only
    when a quick scan of its bytes finds something worth a look.
    """
    # The request behind the proxy, once: every attribute read below skips a proxy lookup.
    req = request._get_current_object()  # type: ignore[attr-defined]  # LocalProxy's own
    environ = req.environ
    if NUL in req.path:
        name = next((k for k, v in (req.view_args or {}).items() if NUL in str(v)), "path")
        raise ValidationFailed(MESSAGE, errors={name: [MESSAGE]})
    if b"%00" in req.query_string or b"\x00" in req.query_string:
        for name, value in req.args.items(multi=True):
            if NUL in name or NUL in value:
                raise ValidationFailed(MESSAGE, errors={name.replace(NUL, ""): [MESSAGE]})
    for header, key in STORED_HEADERS:
        value = environ.get(key)
        if value is not None and NUL in value:
            raise ValidationFailed(MESSAGE, errors={header: [MESSAGE]})
    if not req.is_json or req.path.startswith(UNCHECKED_BODIES):
        return  # only JSON bodies reach the database; a signed webhook's body is its sender's
    # Read here, before the view authenticates the caller: MAX_CONTENT_LENGTH (MAX_BODY_BYTES)
    # bounds what that costs, with a 413 for anything larger.
    config = current_app.config
    check_json_body(
        req.get_data(cache=True), config["MAX_JSON_DEPTH"], config["MAX_JSON_INTEGER_DIGITS"]
    )


def init_app(app: Flask) -> None:
    app.before_request(refuse_bad_input)
