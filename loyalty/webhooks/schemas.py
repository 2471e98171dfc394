from flask import current_app
from marshmallow import ValidationError, fields, validate, validates

from loyalty.schemas import AwareDateTime, ComputedDateTime, StrictSchema, page_schema
from loyalty.webhooks.models import EVENT_TYPES, delivery_status
from loyalty.webhooks.targets import URL_REFUSED, url_refused

MAX_URL = 2048


class EndpointCreateSchema(StrictSchema):
    url = fields.URL(
        required=True,
        schemes={"http", "https"},
        require_tld=False,  # an internal host name or an address is a fine receiver
        # The same words as every refused address: a spelling this validator refuses
        # (`127.1`, `[::ffff:127.0.0.1]`) must not read differently from one refused later.
        error_messages={"invalid": URL_REFUSED},
        validate=validate.Length(max=MAX_URL),
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(1, len(EVENT_TYPES)),
    )

    @validates("url")
    def _https_in_production(self, value, **_kwargs):
        if current_app.config["LOYALTY_ENV"] == "production" and not value.startswith("https:"):
            raise ValidationError("Must be an https URL in production.")

    @validates("url")
    def _allowed_target(self, value, **_kwargs):
        if url_refused(value, current_app.config["WEBHOOK_ALLOW_PRIVATE"]):
            raise ValidationError(URL_REFUSED)


class EndpointSchema(StrictSchema):
    """A `WebhookEndpoint` as the API shows it, without its secret (shown once, at creation)."""

    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    created_at = AwareDateTime()


class CreatedEndpointSchema(EndpointSchema):
    """A `service.NewEndpoint`: the endpoint with its signing secret in clear."""

    secret = fields.String(metadata={"description": "Signing secret: shown only here, once."})


EndpointListSchema = page_schema(EndpointSchema, "WebhookEndpointPage")


def _next_attempt_at(row):
    delivery = row.WebhookDelivery
    return delivery.next_attempt_at if delivery_status(delivery) == "pending" else None


class DeliverySchema(StrictSchema):
    """A row of `service.list_deliveries`: a `WebhookDelivery` and its `WebhookMessage`."""

    id = fields.Integer(attribute="WebhookDelivery.id")
    message_id = fields.Function(
        lambda row: f"msg_{row.WebhookMessage.id}", metadata={"type": "string"}
    )
    type = fields.String(attribute="WebhookMessage.type")
    status = fields.Function(
        lambda row: delivery_status(row.WebhookDelivery),
        metadata={"type": "string", "description": "pending | delivered | failed (gave up)"},
    )
    attempts = fields.Integer(attribute="WebhookDelivery.attempts")
    next_attempt_at = ComputedDateTime(_next_attempt_at, allow_none=True)
    last_attempt_at = AwareDateTime(attribute="WebhookDelivery.last_attempt_at", allow_none=True)
    last_status = fields.Integer(attribute="WebhookDelivery.last_status", allow_none=True)
    last_error = fields.String(attribute="WebhookDelivery.last_error", allow_none=True)
    delivered_at = AwareDateTime(attribute="WebhookDelivery.delivered_at", allow_none=True)
    gave_up_at = AwareDateTime(attribute="WebhookDelivery.gave_up_at", allow_none=True)


DeliveryPageSchema = page_schema(DeliverySchema, "WebhookDeliveryPage")


class TestEventSchema(StrictSchema):
    """A `service.TestEvent`: the test message queued for the endpoint."""

    message_id = fields.Function(
        lambda test: f"msg_{test.message_id}",
        metadata={"type": "string", "description": "Its `webhook-id` header."},
    )
    delivery_id = fields.Integer(metadata={"description": "Its row in the deliveries."})
    endpoint_id = fields.Integer()
    type = fields.String(metadata={"description": "`webhook.test`"})
    created_at = AwareDateTime()
