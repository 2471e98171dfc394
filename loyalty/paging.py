"""Cursor paging by row id: one page of a query, and the cursor of the next one.

A list is ordered by its table's id; a page holds up to `limit` rows and, when more follow,
`next_cursor` names the last row shown (`loyalty.cursors`). `page_schema` in `loyalty.schemas`
turns a `Page` into the API's `{"items": [...], "next_cursor": "..." | null}`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from loyalty.cursors import MAX_ROW_ID, decode_cursor, encode_cursor


@dataclass(frozen=True)
class Page:
    """A page of a list: its rows (or whatever the schema dumps) and the next page's cursor."""

    items: list
    next_cursor: str | None = None

    def map(self, function: Callable[[Any], Any]) -> "Page":
        """The same page with `function(item)` for each item (a row made into its view)."""
        return Page([function(item) for item in self.items], self.next_cursor)


def page_by_id(
    session: Session,
    query: Select,
    id_column,
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = True,
    max_row_id: int = MAX_ROW_ID,
    row_id: Callable[[Any], int] = attrgetter("id"),
) -> Page:
    """The page of `query` after `cursor`, ordered by `id_column` (newest first, or oldest
    first with `newest_first=False`). A query of one entity pages its objects; one of several
    columns pages its rows, and `row_id` reads the id from a row (`lambda row: row[0].id`).
    A cursor that names no row of the table is a 422 (`decode_cursor`)."""
    after = decode_cursor(cursor, max_row_id)
    if after is not None:
        query = query.where(id_column < after if newest_first else id_column > after)
    query = query.order_by(id_column.desc() if newest_first else id_column).limit(limit + 1)
    if len(query.column_descriptions) == 1:
        rows = list(session.scalars(query))
    else:
        rows = list(session.execute(query))
    if len(rows) <= limit:
        return Page(rows)
    rows = rows[:limit]
    return Page(rows, encode_cursor(row_id(rows[-1])))
