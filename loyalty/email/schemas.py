from marshmallow import fields

from loyalty.schemas import AwareDateTime, StrictSchema


def email_status(message) -> str:
    if message.sent_at is not None:
        return "sent"
    return "not_sent" if message.gave_up_at is not None else "queued"


class EmailExportSchema(StrictSchema):
    """An `EmailMessage` to the member, as their export shows it (never a sealed part)."""

    template = fields.String(metadata={"description": "welcome, points_earned, ..."})
    to = fields.String(attribute="to_address", allow_none=True)
    data = fields.Dict(metadata={"description": "The numbers the message shows."})
    status = fields.Function(
        email_status, metadata={"type": "string", "description": "queued | sent | not_sent"}
    )
    created_at = AwareDateTime()
    sent_at = AwareDateTime(allow_none=True)
