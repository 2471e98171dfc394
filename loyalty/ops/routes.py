"""Operations endpoints: liveness, readiness, Prometheus metrics."""

import hmac
import os

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from loyalty.errors import Forbidden, Unauthorized
from loyalty.extensions import db
from loyalty.reports import source as reports_source

bp = Blueprint("ops", __name__)

REQUESTS = Counter("loyalty_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("loyalty_http_request_seconds", "HTTP request latency", ["endpoint"])
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "loyalty_rate_limit_storage_errors",
    "Rate limit storage (Redis) failures; the limits were counted without it",
)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def _head_revision() -> str | None:
    migrate = current_app.extensions["migrate"]
    config = migrate.migrate.get_config(migrate.directory)
    return ScriptDirectory.from_config(config).get_current_head()


@bp.get("/readyz")
def readyz():
    try:
        connection = db.session.connection()
        connection.execute(text("SELECT 1"))
        current = MigrationContext.configure(connection).get_current_revision()
    except Exception:  # noqa: BLE001 - any failure means "not ready"; details go to the log
        current_app.logger.exception("readiness check failed")
        return jsonify(status="unavailable", database=False), 503
    head = _head_revision()
    if current != head:
        return jsonify(status="unavailable", database=True, migration=current, head=head), 503
    body: dict = {"status": "ok", "database": True, "migration": current}
    # The reports' replica is shown, never waited for: orders and the API work without it
    # (reports fall back to the primary, or answer 503, as REPORTS_REPLICA_FALLBACK says).
    replica = reports_source.status()
    if replica is not None:
        body["reports_replica"] = replica
    return jsonify(body)


def _check_scraper() -> None:
    """With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` may scrape; unset,
    metrics are open outside production and closed in it (they name every route and show
    the traffic)."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        if current_app.config["LOYALTY_ENV"] == "production":
            raise Forbidden("Set METRICS_TOKEN to scrape /metrics in production.")
        return
    sent = request.authorization
    if (
        sent is None
        or sent.type != "bearer"
        or not hmac.compare_digest((sent.token or "").encode(), token.encode())
    ):
        raise Unauthorized("Send `Authorization: Bearer <METRICS_TOKEN>`.")


@bp.get("/metrics")
def metrics():
    """Every worker's metrics under gunicorn (gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR:
    each worker writes its values to files there, added up here); this process's otherwise."""
    _check_scraper()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
