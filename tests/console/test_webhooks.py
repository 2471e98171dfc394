"""Webhooks in the console: endpoints created with their secret shown once, the secret rotated,
endpoints disabled and enabled, failed deliveries sent again — through the API's services and
audit records, as the signed-in admin; support and analysts get 403."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from loyalty.audit import AuditLog
from loyalty.types import utcnow
from loyalty.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from tests import factories as f
from tests.console.conftest import csrf_token, post_form
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import create_endpoint, deliveries, run_job
from tests.webhooks.receiver import Receiver

URL = "https://hooks.example.com/loyalty"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def _count(session, model=WebhookEndpoint):
    session.rollback()  # see what the console's requests committed
    return session.scalar(select(func.count()).select_from(model))


def _audit(session, action):
    session.rollback()
    return session.scalars(
        select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


def _fail_every_delivery(session):
    failed = {"gave_up_at": utcnow(), "attempts": 12, "last_status": 500, "last_error": "HTTP 500"}
    session.execute(update(WebhookDelivery).values(**failed))
    session.commit()


@pytest.mark.parametrize("role", ["support", "analyst"])
def test_only_owners_and_admins_open_the_webhook_pages(console_client, client, admin, role):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    other = console_client(role)
    for path in ("/console/webhooks", "/console/webhooks/new",
                 f"/console/webhooks/{endpoint['id']}",
                 f"/console/webhooks/{endpoint['id']}/rotate"):  # fmt: skip
        assert other.get(path).status_code == 403, path
    for path in (f"/console/webhooks/{endpoint['id']}/disable", "/console/webhooks/new"):
        answer = post_form(other, path, {"url": URL}, page="/console/profile")
        assert answer.status_code == 403, path
    assert console_client("admin").get("/console/webhooks").status_code == 200


def test_the_form_offers_every_event_type(console_client):
    page = console_client("admin").get("/console/webhooks/new").get_data(as_text=True)
    for event_type in EVENT_TYPES:
        assert f'value="{event_type}"' in page
    assert "Create endpoint" in page


def test_creating_shows_the_secret_once_and_a_resubmit_creates_nothing(console_client, session):
    client = console_client("admin")
    form = {"url": URL, "events": ["points.earned", "tier.changed"], "submission": "s-1"}
    answer = post_form(client, "/console/webhooks/new", form)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    [secret] = SECRET.findall(page)
    assert "shown only this once" in page

    session.rollback()
    [endpoint] = session.scalars(select(WebhookEndpoint)).all()
    assert (endpoint.url, endpoint.events) == (URL, ["points.earned", "tier.changed"])
    assert secret not in endpoint.secret  # sealed at rest
    [row] = _audit(session, "webhook_endpoint.create")
    assert row.actor == client.admin.audit_name

    again = post_form(client, "/console/webhooks/new", form, page="/console/webhooks/new")
    assert again.status_code == 303
    assert _count(session) == 1
    followed = client.get(again.headers["Location"]).get_data(as_text=True)
    assert SECRET.search(followed) is None and "already created" in followed

    listing = client.get("/console/webhooks").get_data(as_text=True)
    assert URL in listing and "Enabled" in listing and SECRET.search(listing) is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"url": URL}, "Pick at least one event."),
        ({"url": "ftp://hooks.example.com", "events": ["points.earned"]}, "Not a URL"),
        ({"url": "", "events": ["points.earned"]}, "Enter the URL"),
        ({"url": URL, "events": ["no.such.event"]}, "is not a valid choice"),
    ],
)
def test_a_refused_endpoint_shows_why_and_creates_nothing(console_client, session, form, message):
    answer = post_form(console_client("admin"), "/console/webhooks/new", form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message in page and SECRET.search(page) is None
    assert _count(session) == 0


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_signing(
    console_client, client, admin, session
):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    console = console_client("owner")
    path = f"/console/webhooks/{endpoint['id']}/rotate"
    assert "Rotate secret" in console.get(path).get_data(as_text=True)
    answer = post_form(console, path, {"submission": "r-1"})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    page = answer.get_data(as_text=True)
    [secret] = SECRET.findall(page)
    assert secret != endpoint["secret"]
    assert "signed with both the old and the new secret" in page

    again = post_form(console, path, {"submission": "r-1"})
    assert again.status_code == 303
    [row] = _audit(session, "webhook_endpoint.rotate_secret")
    assert row.actor == console.admin.audit_name
    shown = console.get(f"/console/webhooks/{endpoint['id']}").get_data(as_text=True)
    assert "the old secret signs beside the new one until" in shown
    assert SECRET.search(shown) is None


def test_rotating_at_once_drops_the_old_secret(console_client, client, admin, session):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    path = f"/console/webhooks/{endpoint['id']}/rotate"
    answer = post_form(console_client("admin"), path, {"at_once": "y"})
    assert "no longer signs anything" in answer.get_data(as_text=True)
    session.rollback()
    stored = session.get(WebhookEndpoint, endpoint["id"])
    assert stored.previous_secret is None and stored.previous_secret_expires_at is None


def test_disable_and_enable_from_the_endpoint_page(console_client, client, admin, session):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    console = console_client("admin")
    page_path = f"/console/webhooks/{endpoint['id']}"
    answer = post_form(console, page_path + "/disable", {}, page=page_path)
    assert answer.status_code == 303
    page = console.get(page_path).get_data(as_text=True)
    assert "Disabled" in page and ">Enable</button>" in page and "since" in page
    api = client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin).get_json()
    assert api["status"] == "disabled"

    answer = post_form(console, page_path + "/enable", {}, page=page_path)
    assert answer.status_code == 303
    assert ">Disable</button>" in console.get(page_path).get_data(as_text=True)
    assert [a.actor for a in _audit(session, "webhook_endpoint.disable")] == [
        console.admin.audit_name
    ]
    assert len(_audit(session, "webhook_endpoint.enable")) == 1
    token = csrf_token(console.get(page_path).get_data(as_text=True))
    assert console.post(page_path + "/disable", data={}).status_code == 400  # no CSRF token
    assert (
        console.post("/console/webhooks/999/disable", data={"csrf_token": token}).status_code == 404
    )


def test_a_failed_delivery_is_listed_and_sent_again_on_the_next_run(
    console_client, client, admin, storefront, runner, session
):
    with Receiver() as receiver:
        endpoint = create_endpoint(client, admin, receiver.url, ["points.earned"])
        post_event(client, storefront, f.paid("c_one"))
        post_event(client, storefront, f.paid("c_two"))
        _fail_every_delivery(session)
        console = console_client("admin")
        page_path = f"/console/webhooks/{endpoint['id']}"
        page = console.get(page_path + "?status=failed").get_data(as_text=True)
        assert page.count("Send again</button>") == 2 and "HTTP 500" in page
        failed = deliveries(client, admin, endpoint["id"])
        target = failed[0]["id"]

        answer = post_form(
            console, f"{page_path}/deliveries/{target}/retry?status=failed", {},
            page=page_path + "?status=failed",
        )  # fmt: skip
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith(page_path + "?status=failed")
        page = console.get(page_path + "?status=failed").get_data(as_text=True)
        assert page.count("Send again</button>") == 1
        assert "Retrying" in console.get(page_path).get_data(as_text=True)
        [row] = _audit(session, "webhook_delivery.retry")
        assert (row.actor, row.object_id) == (console.admin.audit_name, str(target))

        run_job(runner, "deliver-webhooks", utcnow() + timedelta(seconds=1))
        [request] = receiver.requests
    assert request.verified(endpoint["secret"])["type"] == "points.earned"
    statuses = {d["id"]: d["status"] for d in deliveries(client, admin, endpoint["id"])}
    assert statuses == {target: "delivered", failed[1]["id"]: "failed"}


def test_send_again_on_a_disabled_endpoint_says_why(
    console_client, client, admin, storefront, session
):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    post_event(client, storefront, f.paid("c_off"))
    _fail_every_delivery(session)
    [delivery] = deliveries(client, admin, endpoint["id"])
    client.post(f"/v1/webhook-endpoints/{endpoint['id']}/disable", headers=admin)
    console = console_client("admin")
    page_path = f"/console/webhooks/{endpoint['id']}"
    assert "Send again</button>" not in console.get(page_path).get_data(as_text=True)
    answer = post_form(console, f"{page_path}/deliveries/{delivery['id']}/retry", {},
                       page=page_path)  # fmt: skip
    assert answer.status_code == 303
    assert "enable the endpoint" in console.get(page_path).get_data(as_text=True)
    assert deliveries(client, admin, endpoint["id"])[0]["status"] == "failed"
    other = create_endpoint(client, admin, URL + "/2", ["points.earned"])
    wrong = f"/console/webhooks/{other['id']}/deliveries/{delivery['id']}/retry"
    assert post_form(console, wrong, {}, page=page_path).status_code == 404


def test_the_list_shows_each_endpoints_recent_health(
    console_client, client, admin, storefront, session
):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    post_event(client, storefront, f.paid("c_h1"))
    post_event(client, storefront, f.paid("c_h2"))
    newest = deliveries(client, admin, endpoint["id"])[0]["id"]
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == newest)
        .values(gave_up_at=utcnow(), attempts=12)
    )
    session.commit()
    page = console_client("admin").get("/console/webhooks").get_data(as_text=True)
    assert "1 failed" in page and "1 waiting" in page and "0 delivered" in page
