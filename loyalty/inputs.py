"""Limits on every request's input that no schema sees, checked before any view runs.

- Ids in paths are row ids: `<int:...>` is 1 to 2**63 - 1 (a BIGINT column), `<int32:...>`
  1 to 2**31 - 1 (an INTEGER column). Any other number is no row's id, so the route does not
  match and the answer is a 404, instead of an overflow in the driver (SQLite) or an "out of
  range" error from the database (PostgreSQL) that would surface as a 500.
- No NUL character (U+0000) anywhere a value can come from: the path, the query string, the
  JSON body and the headers that are stored. PostgreSQL cannot store it in text or JSON; it
  is never part of a real id, email or name. A 422 names where it was.
"""

import json

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from loyalty.errors import ValidationFailed

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"  # the only way JSON text can carry U+0000
STORED_HEADERS = (("Idempotency-Key", "HTTP_IDEMPOTENCY_KEY"), ("User-Agent", "HTTP_USER_AGENT"))
# Stripe's signed events: refusing one for a NUL in a field the app never reads would refuse
# it on every retry (a paid gift card never issued); the view reads only what it stores.
UNCHECKED_BODIES = ("/v1/webhooks/",)
MESSAGE = "NUL characters (U+0000) are not allowed."


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


def _nul_in(value, where: str) -> str | None:
    """The dotted path of the first string (or key) holding a NUL, or None."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and NUL in key:
            return path
        found = _nul_in(item, path)
        if found is not None:
            return found
    return None


def refuse_nul() -> None:
    """`before_request`: a 422 for a NUL in the path, query, JSON body or a stored header.

    On every request, so it reads the WSGI environ directly and parses a JSON body only when
    the escaped NUL is in it.
    """
    req = request._get_current_object()
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
    if _ESCAPED_NUL in req.get_data(cache=True):
        try:
            body = json.loads(req.get_data(cache=True))
        except ValueError:
            return  # not JSON: the view's parser answers that
        found = _nul_in(body, "")
        if found is not None:
            raise ValidationFailed(MESSAGE, errors={found or "json": [MESSAGE]})


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul)
