from datetime import timedelta

from flask import current_app
from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.paging import Page
from loyalty.schemas import EmptySchema
from loyalty.types import utcnow
from loyalty.webhooks import service
from loyalty.webhooks.schemas import (
    CreatedEndpointSchema,
    DeliveryListQuery,
    DeliveryPageSchema,
    DeliverySchema,
    EndpointCreateSchema,
    EndpointListSchema,
    EndpointSchema,
    RotateSecretSchema,
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
        """The endpoints, enabled and disabled (their secrets are never shown again)."""
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
    @blp.response(200, EndpointSchema)
    def get(self, endpoint_id):
        """One endpoint (without its secret)."""
        return service.get_endpoint(db.session, endpoint_id)

    @require("admin")
    @blp.response(204)
    def delete(self, endpoint_id):
        """Stop sending to this endpoint; its undelivered messages are dropped."""
        service.delete_endpoint(db.session, endpoint_id)


@blp.route("/webhook-endpoints/<int32:endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    @require("admin")
    @blp.arguments(RotateSecretSchema)
    @blp.response(200, CreatedEndpointSchema)
    def post(self, data, endpoint_id):
        """A new signing secret, in the answer, once. The replaced one signs beside it for
        `overlap_seconds` (default 24 h; 0: it stops at once)."""
        config = current_app.config
        overlap = data.get("overlap_seconds", config["WEBHOOK_SECRET_OVERLAP_SECONDS"])
        _endpoint, rotated = service.rotate_secret(
            db.session, endpoint_id, config["SECRET_KEYS"], utcnow(), timedelta(seconds=overlap)
        )
        return rotated


@blp.route("/webhook-endpoints/<int32:endpoint_id>/disable")
class DisableEndpoint(MethodView):
    @require("admin")
    @blp.arguments(EmptySchema)
    @blp.response(200, EndpointSchema)
    def post(self, _data, endpoint_id):
        """Send nothing to it until it is enabled: new events are not queued for it, queued
        deliveries wait."""
        return service.disable_endpoint(db.session, endpoint_id, utcnow())


@blp.route("/webhook-endpoints/<int32:endpoint_id>/enable")
class EnableEndpoint(MethodView):
    @require("admin")
    @blp.arguments(EmptySchema)
    @blp.response(200, EndpointSchema)
    def post(self, _data, endpoint_id):
        """Send to it again: new events, and the deliveries that waited."""
        return service.enable_endpoint(db.session, endpoint_id)


@blp.route("/webhook-endpoints/<int32:endpoint_id>/deliveries")
class WebhookDeliveries(MethodView):
    @require("admin")
    @blp.arguments(DeliveryListQuery, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, query, endpoint_id):
        """The endpoint's deliveries, newest first: attempts, last answer, delivered or gave
        up (`?status=failed`: only those given up)."""
        return service.list_deliveries(
            db.session, endpoint_id, query["limit"], query["cursor"], query.get("status")
        )


@blp.route("/webhook-deliveries/<int:delivery_id>/retry")
class RetryDelivery(MethodView):
    @require("admin")
    @blp.arguments(EmptySchema)
    @blp.response(200, DeliverySchema)
    def post(self, _data, delivery_id):
        """Send a failed delivery again: the next `deliver-webhooks` run makes one more
        attempt. A delivery already pending is answered as it is; a delivered one, or one
        whose endpoint is disabled or deleted, is 409."""
        return service.retry_delivery(db.session, delivery_id, utcnow())


@blp.route("/webhook-endpoints/<int32:endpoint_id>/test")
class WebhookTestEvent(MethodView):
    @require("admin")
    @blp.response(202, TestEventSchema)
    def post(self, endpoint_id):
        """Queue a signed `webhook.test` message to this endpoint only; `deliver-webhooks`
        sends it like any other (see its deliveries)."""
        return service.send_test_event(db.session, endpoint_id)
