import json
from datetime import timedelta

from flask import current_app
from marshmallow import ValidationError, fields, validate, validates_schema

from loyalty.earning.schemas import ActionType
from loyalty.orders.schemas import MAX_FUTURE
from loyalty.schemas import AwareDateTime, Id, StrictSchema
from loyalty.types import utcnow

# An action's `detail` as JSON text (UTF-8) is at most this long: a review's product, a
# network's name, a form's id — not a document store.
MAX_DETAIL_BYTES = 2048


class ActionSchema(StrictSchema):
    """A customer action to reward: `POST /v1/members/{id}/actions`."""

    id = Id(
        required=True,
        metadata={"description": "The store's id for this action: sent again, it earns nothing "
                  "more and gets the same answer."},
    )  # fmt: skip
    type = ActionType(required=True)
    occurred_at = AwareDateTime(required=True)
    detail = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 64)),
        load_default=dict,
        metadata={"description": f"Anything to keep with the action; at most "
                  f"{MAX_DETAIL_BYTES} bytes as JSON."},
    )  # fmt: skip

    @validates_schema
    def _bounded(self, data: dict, **_kwargs: object) -> None:
        now = utcnow()
        if data["occurred_at"] > now + MAX_FUTURE:
            raise ValidationError("More than 5 minutes in the future.", "occurred_at")
        # Caps count by `occurred_at`: an action dated long ago would find an old, unused day
        # or month. A late delivery or a retry is within the window; a backdated one is not.
        days = current_app.config["ACTION_MAX_AGE_DAYS"]
        if data["occurred_at"] < now - timedelta(days=days):
            raise ValidationError(f"More than {days} days ago.", "occurred_at")
        size = len(json.dumps(data.get("detail") or {}, separators=(",", ":")).encode())
        if size > MAX_DETAIL_BYTES:
            raise ValidationError(f"{size} bytes as JSON; at most {MAX_DETAIL_BYTES}.", "detail")


class ActionEffectSchema(StrictSchema):
    """What the action did for one live rule of its type: points (`bonus`), or nothing because
    a cap of the rule is reached (`capped`, with which cap and its `limit`)."""

    kind = fields.String(metadata={"description": "bonus or capped"})
    rule_id = fields.Integer()
    rule = fields.String(metadata={"description": "The rule's name."})
    points = fields.Integer()
    state = fields.String()
    entry_id = fields.Integer()
    matures_at = AwareDateTime(allow_none=True)
    cap = fields.String(metadata={"description": "per_day, per_month or lifetime"})
    limit = fields.Integer()


class ActionResultSchema(StrictSchema):
    """An action's answer, stored with it and sent again (with `duplicate: true`) when the
    same action is sent again."""

    action_id = fields.String()
    duplicate = fields.Boolean()
    effects = fields.List(fields.Nested(ActionEffectSchema))
