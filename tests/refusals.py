"""What tests of refused input check: a 422 naming the place, and nothing changed."""

from sqlalchemy import func, select

from loyalty.extensions import db


def row_counts(tables) -> dict:
    """Rows in each of `tables` (models), to compare before and after a refused request."""
    return {t.__tablename__: db.session.scalar(select(func.count()).select_from(t)) for t in tables}


def refused(response, *path):
    """A 422 validation-error problem whose `errors` name `path` (nested keys)."""
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["type"] == "validation-error" and body["status"] == 422
    errors = body["errors"]
    for key in path:
        assert key in errors, (path, body)
        errors = errors[key]
    assert errors and all(isinstance(m, str) for m in errors), body
    return body
