"""Builders for the webhook tests: endpoints through the admin API, jobs through the CLI."""

from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.webhooks.models import WebhookDelivery, WebhookMessage
from tests.factories import run_job  # noqa: F401 - the webhook tests import it from here


def create_endpoint(client, admin, url, events):
    response = client.post("/v1/webhook-endpoints", json={"url": url, "events": events},
                           headers=admin)  # fmt: skip
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def messages(event_type: str | None = None) -> list[WebhookMessage]:
    query = select(WebhookMessage).order_by(WebhookMessage.id)
    if event_type is not None:
        query = query.where(WebhookMessage.type == event_type)
    return list(db.session.scalars(query))


def count_deliveries() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookDelivery))


def deliveries(client, admin, endpoint_id) -> list[dict]:
    response = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]
