"""Shared marshmallow building blocks: strict types and the bounds of API.md."""

from datetime import UTC
from decimal import Decimal, InvalidOperation

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

from loyalty.cursors import MAX_INT32_ROW_ID, MAX_ROW_ID, cursor_row_id
from loyalty.cursors import MESSAGE as CURSOR_MESSAGE
from loyalty.dates import iso

MAX_MONEY = 100_000_000_000
MAX_POINTS = 1_000_000_000
MAX_QUANTITY = 1_000_000
MAX_ID = 128


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


class ProblemSchema(Schema):
    """Every error body (RFC 9457 problem+json, `loyalty.errors`), as /openapi.json documents
    it. Extra facts about an error (`reason`, `expected`...) are further top-level members."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"description": "Stable slug, e.g. not-found"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(metadata={"description": "Field name -> messages (or nested fields)"})


class StrictBoolean(fields.Boolean):
    """Only JSON true/false: "yes", 1 and "true" are not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class Whole(fields.Nested):
    """A nested object that replaces the stored one whole: its required fields stay required
    when the parent is loaded partially (a PUT whose left-out fields keep their value)."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=None, **kwargs)


class Itself(fields.Nested):
    """A nested object made of attributes of the object being dumped, not of one of its
    attributes (an entry's `source` is its `source_type` and `source_id`)."""

    def __init__(self, nested, **kwargs):
        super().__init__(nested, dump_only=True, **kwargs)

    def get_value(self, obj, attr, accessor=None, default=None):
        return obj


class DecimalString(fields.Field):
    """A decimal sent as a JSON string ("1.5"); numbers are refused so nothing goes via float."""

    def __init__(self, *, min_value=None, min_inclusive=True, max_value=None, **kwargs):
        super().__init__(**kwargs)
        self.min_value = Decimal(min_value) if min_value is not None else None
        self.min_inclusive = min_inclusive
        self.max_value = Decimal(max_value) if max_value is not None else None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format(Decimal(value).normalize(), "f")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 32:
            raise ValidationError('Must be a decimal number written as a string, e.g. "1.5".')
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise ValidationError("Not a valid decimal number.") from exc
        if not number.is_finite():
            raise ValidationError("Not a valid decimal number.")
        if self.min_value is not None and (
            number < self.min_value or (number == self.min_value and not self.min_inclusive)
        ):
            op = ">=" if self.min_inclusive else ">"
            raise ValidationError(f"Must be {op} {self.min_value}.")
        if self.max_value is not None and number > self.max_value:
            raise ValidationError(f"Must be <= {self.max_value}.")
        return number


def Money(**kwargs):  # noqa: N802 - reads as a type in schemas
    return fields.Integer(strict=True, validate=validate.Range(0, MAX_MONEY), **kwargs)


def PositiveMoney(**kwargs):  # noqa: N802
    return fields.Integer(strict=True, validate=validate.Range(1, MAX_MONEY), **kwargs)


def Points(**kwargs):  # noqa: N802
    return fields.Integer(strict=True, validate=validate.Range(-MAX_POINTS, MAX_POINTS), **kwargs)


def Quantity(**kwargs):  # noqa: N802
    return fields.Integer(strict=True, validate=validate.Range(1, MAX_QUANTITY), **kwargs)


def Id(**kwargs):  # noqa: N802
    return fields.String(validate=validate.Length(1, MAX_ID), **kwargs)


MEMBER_ID_RULE = (
    "Member ids are 1 to 128 printable characters, without / or \\, and not . or .. "
    "(each must fit one path segment: /v1/members/{id})."
)


def _a_member_id(value: str) -> None:
    # A path segment cannot carry `/` (nor `\`, which some proxies turn into one); clients
    # and proxies resolve `.` and `..` away; control and other invisible characters do not
    # survive URLs and logs intact.
    if value in (".", "..") or "/" in value or "\\" in value or not value.isprintable():
        raise ValidationError(MEMBER_ID_RULE)


def MemberId(**kwargs):  # noqa: N802
    """A member's id (the store's customer id): what `/v1/members/{id}` can name."""
    return fields.String(
        validate=[validate.Length(1, MAX_ID), _a_member_id],
        metadata={"description": MEMBER_ID_RULE},
        **kwargs,
    )


def Text(max_length: int = 500, **kwargs):  # noqa: N802
    return fields.String(validate=validate.Length(0, max_length), **kwargs)


def Currency(**kwargs):  # noqa: N802
    return fields.String(validate=validate.Regexp(r"^[A-Z]{3}$"), **kwargs)


class AwareDateTime(fields.AwareDateTime):
    """ISO 8601 with an offset on input; UTC with offset on output (`loyalty.dates.iso`),
    documented as `format: date-time`."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        # Stored and compared in UTC: a time that has no UTC spelling (before year 1 or after
        # 9999 once its offset is applied) names no instant the app can keep.
        try:
            moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("Out of range once converted to UTC.") from exc
        return moment


class ComputedDateTime(AwareDateTime):
    """A moment the dumped object does not hold as an attribute: `function(obj)`, dumped and
    documented as `AwareDateTime` (e.g. "the next attempt, while one is pending")."""

    def __init__(self, function, **kwargs):
        super().__init__(dump_only=True, **kwargs)
        self.function = function

    def get_value(self, obj, attr, accessor=None, default=None):
        return self.function(obj)


def Cursor(max_row_id: int = MAX_ROW_ID, **kwargs):  # noqa: N802
    """`?cursor=`: a page's `next_cursor`, kept as sent (services decode it); anything that
    names no row of the list's table is refused here, with the other query parameters'
    errors."""

    def a_cursor(value: str) -> None:
        if value and cursor_row_id(value, max_row_id) is None:
            raise ValidationError(CURSOR_MESSAGE)

    return fields.String(load_default=None, validate=[validate.Length(0, 256), a_cursor], **kwargs)


class PaginationQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = Cursor()


class Int32PaginationQuery(PaginationQuery):
    """For a list of rows with INTEGER ids (tiers, rules, rewards...)."""

    cursor = Cursor(MAX_INT32_ROW_ID)


class EmptySchema(StrictSchema):
    """For POSTs that need no input: an empty body (or `{}`) is accepted."""


def page_schema(item_schema: type[Schema] | Schema, name: str) -> type[Schema]:
    """The schema of a page of a list (`loyalty.paging.Page`, or a dict of the same keys):
    `{"items": [item, ...], "next_cursor": "..." | null}`, named `name` in /openapi.json."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema)),
            "next_cursor": fields.String(
                allow_none=True,
                metadata={"description": "The next page's `?cursor=`; null on the last page."},
            ),
        },
        name=name,
    )
