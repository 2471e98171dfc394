from flask import current_app
from marshmallow import ValidationError, fields, validate, validates

from loyalty.schemas import AwareDateTime, StrictSchema, page_schema
from loyalty.webhooks.service import EVENT_TYPES
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
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    created_at = AwareDateTime()


class CreatedEndpointSchema(EndpointSchema):
    secret = fields.String(metadata={"description": "Signing secret: shown only here, once."})


EndpointListSchema = page_schema(EndpointSchema, "WebhookEndpointPage")


class DeliverySchema(StrictSchema):
    id = fields.Integer()
    message_id = fields.String()
    type = fields.String()
    status = fields.String(metadata={"description": "pending | delivered | failed (gave up)"})
    attempts = fields.Integer()
    next_attempt_at = AwareDateTime(allow_none=True)
    last_attempt_at = AwareDateTime(allow_none=True)
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = AwareDateTime(allow_none=True)
    gave_up_at = AwareDateTime(allow_none=True)


DeliveryPageSchema = page_schema(DeliverySchema, "WebhookDeliveryPage")
