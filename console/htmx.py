"""htmx, as progressive enhancement: a view answers the whole page, or only the part an htmx
request asked for (`hx-target`), from the same template."""

from flask import request


def is_htmx() -> bool:
    """Is this request made by htmx (and not a history restore, which wants the whole page)?"""
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
