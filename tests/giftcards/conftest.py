import pytest

from loyalty import ratelimit
from tests.giftcards.fake_stripe import API_KEY, FakeStripe

WEBHOOK_SECRETS = ["whsec_old_secret", "whsec_new_secret"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request):
    """The rate limit counters of the shared `app` outlive one test: reset them after each test
    that uses it. Asking for `app` only then keeps the tests that need no database (or make
    their own, `pg_app`) from running once per database backend."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        ratelimit.reset(app)


def configure_stripe(app, base_url: str):
    app.config.update(
        STRIPE_API_KEY=API_KEY, STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRETS, STRIPE_API_BASE=base_url
    )
    app.extensions.pop("giftcards.gateway", None)  # rebuilt from this config on first use


@pytest.fixture
def stripe_api(app):
    before = {
        k: app.config[k] for k in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS", "STRIPE_API_BASE")
    }
    with FakeStripe() as fake:
        configure_stripe(app, fake.url)
        yield fake
    app.config.update(before)
    app.extensions.pop("giftcards.gateway", None)
