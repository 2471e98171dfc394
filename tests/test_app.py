"""The service around the API: configuration, health, docs."""

import pytest

from loyalty import create_app
from loyalty.config import ConfigError


def test_production_refuses_default_or_short_secrets(monkeypatch):
    monkeypatch.setenv("LOYALTY_ENV", "production")
    monkeypatch.delenv("SECRET_KEYS", raising=False)
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("SECRET_KEYS", "short")
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("SECRET_KEYS", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    assert create_app().config["SECRET_KEY"] == "x" * 40


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_health_ready_metrics_and_docs(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["database"] is True
    client.get("/v1/program")
    assert b"loyalty_http_requests_total" in client.get("/metrics").data
    spec = client.get("/openapi.json").get_json()
    assert "/v1/events" in spec["paths"] and "/v1/members/{customer_id}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_and_method_are_problem_json(client, admin):
    missing = client.get("/v1/nothing-here", headers=admin)
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"
    wrong = client.delete("/v1/events", headers=admin)
    assert wrong.status_code == 405 and wrong.get_json()["type"] == "method-not-allowed"


def test_gunicorn_config_freezes_what_a_worker_loaded_out_of_the_collectors_reach():
    import gc
    import runpy
    from pathlib import Path

    config = runpy.run_path(str(Path(__file__).parents[1] / "gunicorn.conf.py"))
    assert (config["worker_class"], config["workers"], config["threads"]) == ("gthread", 4, 4)
    gc.unfreeze()
    try:
        config["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000  # the app, its schemas and mappers: all loaded
    finally:
        gc.unfreeze()
