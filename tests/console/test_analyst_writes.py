"""An analyst reads reports and the program's configuration and changes nothing: every console
route that takes a POST — found in the app's URL map, so pages added later are covered too —
answers an analyst's POST, with a valid CSRF token, with 403 and leaves the database as it was.

Only the routes of one's own account (signing in and out, one's own password and two-step
sign-in) are left out: every admin may use those on their own account.
"""

import pytest
from werkzeug.routing import IntegerConverter

from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.seed import DEMO_CUSTOMER, seed_demo_program
from tests.console.conftest import csrf_token
from tests.dump import database_text

OWN_ACCOUNT = ("/console/sign-in", "/console/sign-out", "/console/profile")


def console_writes(app) -> list:
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/console")
            and "POST" in rule.methods
            and not rule.rule.startswith(OWN_ACCOUNT)
        ),
        key=lambda rule: rule.rule,
    )


def example_url(rule) -> str:
    """The rule's URL with an existing thing's id in each part (the demo program's first)."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, IntegerConverter):
            values[name] = 1
        elif name == "customer_id":
            values[name] = DEMO_CUSTOMER
        else:
            values[name] = "1"
    return rule.build(values, append_unknown=False)[1]


@pytest.fixture
def demo(session):
    seed_demo_program(session, hooks())
    session.commit()


def test_an_analyst_gets_403_on_every_console_write(app, demo, console_client):
    analyst = console_client("analyst")
    token = csrf_token(analyst.get("/console/dashboard").get_data(as_text=True))
    writes = console_writes(app)
    paths = [rule.rule for rule in writes]
    assert "/console/settings" in paths and "/console/tiers/<int:tier_id>" in paths
    before = database_text()
    answers = {}
    for rule in writes:
        url = example_url(rule)
        answer = analyst.post(url, data={"csrf_token": token, "reason": "x", "note": "x"})
        answers[url] = answer.status_code
    assert {url: status for url, status in answers.items() if status != 403} == {}
    db.session.expire_all()
    assert database_text() == before


def test_the_same_posts_are_not_refused_for_an_owner_as_forbidden(app, demo, console_client):
    """The 403s above are the role's: an owner's POSTs are not refused as forbidden."""
    owner = console_client("owner")
    token = csrf_token(owner.get("/console/dashboard").get_data(as_text=True))
    for rule in console_writes(app):
        answer = owner.post(example_url(rule), data={"csrf_token": token})
        assert answer.status_code != 403, rule.rule
