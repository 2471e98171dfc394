"""Page cursors: the last row id of a page, opaque to callers (URL-safe base64 of its digits).

Every paged list encodes and decodes them here. A cursor is trusted no more than any other
input: whatever does not decode to a row id of its table (1 to 2**63 - 1 for a BIGINT key,
2**31 - 1 for an INTEGER one) is a 422, never a comparison the database cannot make (an
overflow in SQLite's driver, "out of range" from PostgreSQL).
"""

import base64
import binascii
import re

from loyalty.errors import ValidationFailed

MAX_ROW_ID = 2**63 - 1
MAX_INT32_ROW_ID = 2**31 - 1
MESSAGE = "Not a cursor from this API."
_ROW_ID = re.compile(r"[1-9][0-9]{0,18}")
_ENCODED = re.compile(r"[A-Za-z0-9_-]{1,28}")  # 19 digits take 26 characters


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def cursor_row_id(cursor: str, max_row_id: int = MAX_ROW_ID) -> int | None:
    """The row id a cursor names, or None if it names none: only the exact text
    `encode_cursor` gives (base64's decoder would also take padding, stray characters...)."""
    if not _ENCODED.fullmatch(cursor):
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error):
        return None
    if not _ROW_ID.fullmatch(text) or encode_cursor(int(text)) != cursor:
        return None
    value = int(text)
    return value if value <= max_row_id else None


def decode_cursor(cursor: str | None, max_row_id: int = MAX_ROW_ID) -> int | None:
    """The row id of a page's cursor (None: the first page); 422 for anything else."""
    if not cursor:
        return None
    value = cursor_row_id(cursor, max_row_id)
    if value is None:
        raise ValidationFailed(MESSAGE, errors={"cursor": [MESSAGE]})
    return value
