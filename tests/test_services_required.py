"""The suite's one skip (`service_missing` in conftest.py) is for a service that is not there,
and `--require-services` (what `.ci/run` passes) turns it into a failure: a PostgreSQL test can
skip on a laptop without PostgreSQL, never in CI."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PG_ONLY = "tests/test_migrations.py::test_downgrade_to_base_and_upgrade_again_on_postgresql"


def _run(*flags: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TEST_POSTGRES_URL": "postgresql://127.0.0.1:1/test",  # nothing listens on port 1
        "LOYALTY_REQUIRE_SERVICES": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", PG_ONLY, *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_postgresql_test_without_postgresql_skips_and_says_why():
    result = _run()
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "PostgreSQL not reachable" in result.stdout


@pytest.mark.slow
def test_with_require_services_it_fails_instead():
    result = _run("--require-services")
    assert result.returncode == 1, result.stdout
    assert "--require-services is set" in result.stdout
    assert "skipped" not in result.stdout


def test_ci_passes_require_services():
    assert 'make test PYTEST_ARGS="--require-services"' in (ROOT / ".ci" / "run").read_text()
