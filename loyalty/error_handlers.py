"""Which answer each exception gets, after the request's work is rolled back.

The answers themselves (problem+json) are built in `loyalty.errors`; this module sits above
the database layer, which it needs to roll back and to tell a transient failure.
"""

from flask import Flask
from werkzeug.exceptions import HTTPException

from loyalty.errors import (
    DomainError,
    domain_error_response,
    http_error_response,
    problem,
    unavailable,
)
from loyalty.extensions import db
from loyalty.retry import transient


def register_error_handlers(app: Flask) -> None:
    def rollback() -> None:
        try:
            db.session.rollback()
        except Exception as exc:  # the connection is gone: nothing of this request stays
            if not transient(exc):
                raise

    def transient_failure(error: Exception):
        app.logger.warning("Database unavailable: %s", type(error).__name__)
        return domain_error_response(unavailable())

    @app.errorhandler(DomainError)
    def _domain(error):
        rollback()
        return domain_error_response(error)

    @app.errorhandler(HTTPException)
    def _http(error):
        rollback()
        # An exception in an after_request hook (the commit) reaches here as a 500.
        original = getattr(error, "original_exception", None)
        if original is not None and transient(original):
            return transient_failure(original)
        return http_error_response(error)

    @app.errorhandler(Exception)
    def _unexpected(error):
        rollback()
        if transient(error):
            return transient_failure(error)
        # Never echo the exception text: it may carry SQL or secrets.
        app.logger.exception("Unhandled error")
        return problem(500, "server-error", "Internal server error")
