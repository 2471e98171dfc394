"""A test that needs a missing service (PostgreSQL, Chromium) skips in a plain run and fails
under `--require-services`, which `.ci/run` passes: CI never skips one."""

import pytest

from tests.conftest import service_missing


class _Config:
    def __init__(self, require: bool):
        self.require = require

    def getoption(self, name: str):
        assert name == "--require-services"
        return self.require


def test_a_missing_service_skips_in_a_plain_run():
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not reachable"):
        service_missing(_Config(require=False), "PostgreSQL not reachable")


def test_a_missing_service_fails_when_services_are_required():
    with pytest.raises(pytest.fail.Exception, match=r"--require-services is set"):
        service_missing(_Config(require=True), "PostgreSQL not reachable")
