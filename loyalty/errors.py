"""Domain errors and their one mapping to RFC 9457 problem+json responses.

Services raise `DomainError` subclasses; nothing else builds an error response.
"""

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    status = 400
    type = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: dict | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.extra = extra  # extra facts about the error, e.g. reason=...


class ValidationFailed(DomainError):
    status, type, title = 422, "validation-error", "The request is not valid"


class NotFound(DomainError):
    status, type, title = 404, "not-found", "Not found"


class Unauthorized(DomainError):
    status, type, title = 401, "unauthorized", "Missing or invalid credentials"


class Forbidden(DomainError):
    status, type, title = 403, "forbidden", "Not allowed for these credentials"


class Conflict(DomainError):
    status, type, title = 409, "conflict", "Conflict with the current state"


class InsufficientPoints(DomainError):
    status, type, title = 422, "insufficient-points", "Not enough points"


class InsufficientFunds(DomainError):
    status, type, title = 422, "insufficient-funds", "Not enough balance"


class CurrencyMismatch(DomainError):
    status, type, title = 422, "currency-mismatch", "Currency does not match the program"


class IdempotencyConflict(DomainError):
    status, type, title = (
        422,
        "idempotency-conflict",
        "Idempotency-Key was already used with another request",
    )


class RateLimited(DomainError):
    status, type, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail=None, *, retry_after: int = 60, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """The database failed in a way that passes by itself: send the same request again."""

    status, type, title = 503, "service-unavailable", "Service temporarily unavailable"

    def __init__(self, detail=None, *, retry_after: int = 1, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class ReferralRejected(DomainError):
    status, type, title = 422, "referral-rejected", "Referral refused"


class RewardUnavailable(DomainError):
    status, type, title = 409, "reward-unavailable", "Reward is not available"


class CodeInvalid(DomainError):
    status, type, title = 422, "code-invalid", "Code is not valid"


# HTTP errors raised by Flask/werkzeug/flask-smorest themselves, by status.
_HTTP_TYPES = {
    400: "validation-error",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "validation-error",
    415: "validation-error",
    422: "validation-error",
    429: "rate-limited",
}


def problem(status: int, type_: str, title: str, detail: str | None = None, **members):
    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in members.items() if v is not None})
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def domain_error_response(error: DomainError):
    response = problem(
        error.status, error.type, error.title, error.detail, errors=error.errors, **error.extra
    )
    if isinstance(error, (RateLimited, ServiceUnavailable)):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def http_error_response(error: HTTPException):
    status = error.code or 500
    errors = None
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages:
        # webargs nests messages by location ({"json": {...}}); the body is what callers send.
        errors = messages.get("json", messages) if isinstance(messages, dict) else messages
    if status == 400:
        # Malformed JSON or an unreadable body: a validation error like any other bad input.
        status = 422
        errors = errors or {"json": ["The body is not valid JSON."]}
    type_ = _HTTP_TYPES.get(status, "http-error" if status < 500 else "server-error")
    title = error.name if status != 422 else "The request is not valid"
    detail = error.description if status != 422 else "See `errors` for each invalid field."
    response = problem(status, type_, title, detail, errors=errors)
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if status == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = "60"
    return response


def unavailable(detail: str | None = None) -> ServiceUnavailable:
    """503 for a transient database failure: nothing was changed, the same request may be sent
    again after `Retry-After` (DATABASE_RETRY_AFTER_SECONDS)."""
    seconds = current_app.config.get("DATABASE_RETRY_AFTER_SECONDS", 1) if current_app else 1
    return ServiceUnavailable(
        detail or "The database is briefly unavailable; send the same request again.",
        retry_after=seconds,
    )
