"""Which answer each exception gets, after the request's work is rolled back.

The answers themselves (problem+json) are built in `loyalty.errors`; the rollback is the
request transaction's (`loyalty.transaction.discard`), passed in.
"""

from collections.abc import Callable

from flask import Flask
from werkzeug.exceptions import HTTPException

from loyalty.errors import (
    DomainError,
    domain_error_response,
    http_error_response,
    problem,
    unavailable,
)
from loyalty.retry import transient


def register_error_handlers(app: Flask, rollback: Callable[[], None]) -> None:
    """Every exception answered as problem+json, after `rollback()` (the request's
    transaction's `loyalty.transaction.discard`)."""

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
