"""Migrations are the schema: one linear history, up and down, matching the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from loyalty.extensions import db
from tests.conftest import clone_pg, make_app


def script_directory(app) -> ScriptDirectory:
    migrate = app.extensions["migrate"]
    return ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))


def test_history_is_one_line(app):
    with app.app_context():
        scripts = script_directory(app)
        assert len(scripts.get_heads()) == 1
        assert len(scripts.get_bases()) == 1
        for revision in scripts.walk_revisions():
            assert not revision.is_merge_point


def test_models_and_migrations_agree(app, session):
    """Fails when a model changes without a migration (what `flask db check` does)."""
    connection = session.connection()
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences = compare_metadata(context, db.metadata)
    assert differences == []


def _down_and_up(url):
    app = make_app(url)
    with app.app_context():
        downgrade(revision="base")
        upgrade()
        connection = db.engine.connect()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
        assert context.get_current_revision() == script_directory(app).get_current_head()
        connection.close()
        db.engine.dispose()


def test_downgrade_to_base_and_upgrade_again_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    _down_and_up(url)


@pytest.mark.postgres
def test_downgrade_to_base_and_upgrade_again_on_postgresql(pg_template):
    _down_and_up(clone_pg(pg_template, "roundtrip"))


def test_fresh_database_has_the_default_program_and_base_tier(client, admin):
    program = client.get("/v1/program", headers=admin).get_json()
    assert program["currency"] == "USD"
    assert program["timezone"] == "UTC"
    assert program["points_per_unit"] == "1"
    assert program["pending_days"] == 30
    assert program["expiry_inactive_days"] is None
    assert program["qualifying_period"] == "calendar_year"
    assert program["auto_enroll"] is True
