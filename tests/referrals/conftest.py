import pytest

from loyalty import ratelimit


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app):
    """Share-link visits are rate limited per client: each test starts with no visit counted."""
    ratelimit.reset(app)
