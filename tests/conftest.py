"""Test fixtures: every test database is built by running the migrations.

Fast tests run twice, on SQLite and on PostgreSQL, each inside a transaction rolled back at the
end. Concurrency tests get a fresh PostgreSQL database cloned from a migrated template and make
real commits from several connections. Without PostgreSQL, its tests skip and say so; with
`--require-services` (what `.ci/run` passes) a missing service is a failure instead.
`--sqlite-only` (what `make test-fast` passes) leaves out, rather than skips, every test that
needs PostgreSQL or Chromium.
"""

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask_migrate import upgrade
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.orm import scoped_session, sessionmaker

from loyalty import cache, create_app
from loyalty.auth import create_api_key
from loyalty.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
# One set of databases per checkout and xdist worker, so parallel runs never meet.
_SUFFIX = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]


def pytest_addoption(parser):
    parser.addoption(
        "--require-services",
        action="store_true",
        default=os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1",
        help="Fail instead of skipping when PostgreSQL or Chromium is missing (CI).",
    )
    parser.addoption(
        "--sqlite-only",
        action="store_true",
        default=False,
        help="Run only the SQLite tests: leave out PostgreSQL, concurrency and browser tests.",
    )


# What a test needs, by the fixtures it uses, beyond the SQLite database every checkout has.
NEEDS_SERVICES = frozenset({"pg_app", "pg_keys", "pg_template", "chromium"})
NEEDS_MARKERS = ("postgres", "concurrency", "browser")


def _needs_services(item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgresql":
        return True
    if NEEDS_SERVICES & set(getattr(item, "fixturenames", ())):
        return True
    return any(item.get_closest_marker(name) for name in NEEDS_MARKERS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "backend" in names and "pg_app" in names:
            # A test on a database of its own would only run the same thing twice.
            raise pytest.UsageError(
                f"{item.nodeid} uses pg_app and the per-backend app; it needs only one"
            )
    if config.getoption("--sqlite-only"):
        kept = [item for item in items if not _needs_services(item)]
        left_out = [item for item in items if _needs_services(item)]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = kept


def service_missing(config, message: str):
    if config.getoption("--require-services"):
        pytest.fail(f"{message} (--require-services is set)", pytrace=False)
    pytest.skip(message)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


def _pg_available() -> bool:
    try:
        _pg_admin("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def make_app(database_url: str, **config):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEYS": ["test-secret-old", "test-secret-new"],
            "SECRET_KEY": "test-secret-new",
            "DEMO_HISTORY": False,  # tests make their own data (tests/test_demo_history.py)
            # A test's transaction is one connection a thread must not share; tests that want
            # awards run in the background (a served app) turn it on.
            "SEGMENT_AWARDS_IN_BACKGROUND": False,
            **config,
        }
    )


def migrate(app) -> None:
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_template(request):
    """A PostgreSQL database migrated once per run; others are cloned from it."""
    if not _pg_available():
        service_missing(request.config, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"loyalty_t_{_SUFFIX}_{_worker()}_tmpl"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    migrate(make_app(_pg_url(name)))
    return name


def clone_pg(template: str, suffix: str) -> str:
    name = f"loyalty_t_{_SUFFIX}_{_worker()}_{suffix}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _pg_url(name)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "migrated.sqlite3"
    url = f"sqlite:///{path}"
    migrate(make_app(url))
    return url


@pytest.fixture(scope="session")
def _apps():
    apps = {}
    yield apps
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def app(request, backend, _apps, tmp_path_factory):
    """The app on a migrated database of `backend`; one app per backend per run."""
    if backend not in _apps:
        if backend == "sqlite":
            url = request.getfixturevalue("sqlite_url")
        else:
            url = clone_pg(request.getfixturevalue("pg_template"), "rb")
        _apps[backend] = make_app(url)
    return _apps[backend]


class BoundSession(FlaskSession):
    """Flask-SQLAlchemy's Session picks its own engine; prefer an explicit bind when given."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if self.bind is not None:
            return self.bind
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


@contextmanager
def rolled_back(app):
    """Everything in the block — requests, commits, jobs — is rolled back at its end."""
    with app.app_context():
        cache.clear_all()  # nothing cached from another test's rolled-back rows
        # nor widget tokens verified for another test's members (a test may also bound the
        # cache and count what it holds)
        app.extensions.pop("loyalty.verified_tokens", None)
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = scoped_session(
            sessionmaker(
                class_=BoundSession,
                db=db,
                bind=connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
        )
        try:
            yield
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()
            cache.clear_all()
            app.extensions.pop("loyalty.verified_tokens", None)


@pytest.fixture
def session(app):
    with rolled_back(app):
        yield db.session


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def runner(app, session):
    return app.test_cli_runner()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(session):
    """API keys of each scope, as ready-made headers."""
    made = {}
    for scope in ("admin", "storefront", "reports"):
        _row, key = create_api_key(session, f"test-{scope}", [scope])
        made[scope] = bearer(key)
    session.commit()
    return made


@pytest.fixture
def admin(keys):
    return keys["admin"]


@pytest.fixture
def storefront(keys):
    return keys["storefront"]


# --- PostgreSQL with real commits -------------------------------------------------------------


@pytest.fixture
def pg_app(request):
    """A fresh, migrated PostgreSQL database for one test; real commits, many connections."""
    url = clone_pg(request.getfixturevalue("pg_template"), "c")
    app = make_app(url, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 10, "max_overflow": 20})
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def pg_keys(pg_app):
    made = {}
    with pg_app.app_context():
        for scope in ("admin", "storefront"):
            _row, key = create_api_key(db.session, f"test-{scope}", [scope])
            made[scope] = bearer(key)
        db.session.commit()
    return made


@pytest.fixture(scope="session")
def chromium(request):
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        service_missing(request.config, "Chromium not installed (apt-get install chromium)")
    return path


# Chromium started as on this machine's kind: headless, no background traffic to a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
