import pytest

from loyalty import ratelimit


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request):
    """Share-link visits are rate limited per client: each test on the shared `app` starts with
    no visit counted. Only those: a test on its own database (`pg_app`) must not be made to
    run once per database backend by asking for `app` here."""
    if "app" in request.fixturenames:
        ratelimit.reset(request.getfixturevalue("app"))
