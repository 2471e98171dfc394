from flask import current_app
from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.paging import Page
from loyalty.schemas import PaginationQuery
from loyalty.webhooks import service
from loyalty.webhooks.schemas import (
    CreatedEndpointSchema,
    DeliveryPageSchema,
    EndpointCreateSchema,
    EndpointListSchema,
    TestEventSchema,
)

blp = Blueprint(
    "webhooks", __name__, url_prefix="/v1", description="Outbound webhooks (Standard Webhooks)"
)


@blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    @require("admin")
    @blp.response(200, EndpointListSchema)
    def get(self):
        """The live endpoints (their secrets are never shown again)."""
        return Page(service.list_endpoints(db.session))

    @require("admin")
    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, CreatedEndpointSchema)
    def post(self, data):
        """Subscribe a URL to event types; the answer carries the signing secret, once."""
        endpoint, created = service.create_endpoint(
            db.session, data["url"], data["events"], current_app.config["SECRET_KEYS"]
        )
        return created


@blp.route("/webhook-endpoints/<int32:endpoint_id>")
class WebhookEndpointItem(MethodView):
    @require("admin")
    @blp.response(204)
    def delete(self, endpoint_id):
        """Stop sending to this endpoint; its undelivered messages are dropped."""
        service.delete_endpoint(db.session, endpoint_id)


@blp.route("/webhook-endpoints/<int32:endpoint_id>/deliveries")
class WebhookDeliveries(MethodView):
    @require("admin")
    @blp.arguments(PaginationQuery, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, query, endpoint_id):
        """The endpoint's deliveries, newest first: attempts, last answer, delivered or gave up."""
        return service.list_deliveries(db.session, endpoint_id, query["limit"], query["cursor"])


@blp.route("/webhook-endpoints/<int32:endpoint_id>/test")
class WebhookTestEvent(MethodView):
    @require("admin")
    @blp.response(202, TestEventSchema)
    def post(self, endpoint_id):
        """Queue a signed `webhook.test` message to this endpoint only; `deliver-webhooks`
        sends it like any other (see its deliveries)."""
        return service.send_test_event(db.session, endpoint_id)
