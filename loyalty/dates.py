"""How the API writes a moment: ISO 8601 in UTC with its offset (`2026-01-01T00:00:00+00:00`).

One spelling for responses (`loyalty.schemas.AwareDateTime` dumps through `iso`), for the
member view's hand-built fast path, for webhook payloads and for the answers stored with order
events.
"""

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """`moment` in UTC, as ISO 8601 with its offset; None stays None."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None
