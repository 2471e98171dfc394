from flask import current_app
from marshmallow import ValidationError, fields, validate, validates

from loyalty.schemas import (
    AwareDateTime,
    ComputedDateTime,
    PaginationQuery,
    StrictSchema,
    page_schema,
)
from loyalty.webhooks.models import (
    DELIVERY_STATUSES,
    EVENT_TYPES,
    delivery_status,
    endpoint_status,
)
from loyalty.webhooks.targets import URL_REFUSED, url_refused

MAX_URL = 2048
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


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
    """A `WebhookEndpoint` as the API shows it, without its secret (shown once, at creation
    and at each rotation)."""

    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    status = fields.Function(
        endpoint_status,
        metadata={
            "type": "string",
            "description": "enabled | disabled (sent nothing until enabled again)",
        },
    )
    created_at = AwareDateTime()
    disabled_at = AwareDateTime(allow_none=True)
    previous_secret_expires_at = AwareDateTime(
        allow_none=True,
        metadata={
            "description": "After a rotation: until when the replaced secret still signs "
            "deliveries beside the new one (null: no other secret)."
        },
    )


class CreatedEndpointSchema(EndpointSchema):
    """A `service.NewEndpoint`: the endpoint with its signing secret in clear."""

    secret = fields.String(
        metadata={"description": "Signing secret: shown only here, once (at creation, or in "
                  "the answer of the rotation that made it)."}
    )  # fmt: skip


class RotateSecretSchema(StrictSchema):
    """`POST /v1/webhook-endpoints/{id}/rotate-secret`; an empty body takes the default."""

    overlap_seconds = fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_OVERLAP_SECONDS),
        metadata={
            "description": "How long the replaced secret keeps signing beside the new one "
            "(default WEBHOOK_SECRET_OVERLAP_SECONDS, 24 h); 0 stops it at once (a leaked "
            "secret)."
        },
    )


EndpointListSchema = page_schema(EndpointSchema, "WebhookEndpointPage")


def _next_attempt_at(row):
    delivery = row.WebhookDelivery
    return delivery.next_attempt_at if delivery_status(delivery) == "pending" else None


class DeliveryListQuery(PaginationQuery):
    status = fields.String(
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": "Only deliveries in this status (failed: given up)."},
    )


class DeliverySchema(StrictSchema):
    """A row of `service.list_deliveries`: a `WebhookDelivery` and its `WebhookMessage`."""

    id = fields.Integer(attribute="WebhookDelivery.id")
    endpoint_id = fields.Integer(attribute="WebhookDelivery.endpoint_id")
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
