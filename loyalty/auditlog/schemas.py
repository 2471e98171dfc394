"""The audit log's query and entries as `GET /v1/audit-log` takes and gives them."""

import re

from marshmallow import ValidationError, fields, validate, validates_schema

from loyalty.auditlog.service import AuditFilter
from loyalty.reports.schemas import ReportMoment
from loyalty.schemas import AwareDateTime, Itself, PaginationQuery, StrictSchema, page_schema

TARGET_PATTERN = r"^[a-z][a-z0-9_]{0,31}(:[^\s]{1,128})?$"
_TARGET = re.compile(TARGET_PATTERN)


class AuditLogQuery(PaginationQuery):
    actor = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "Exactly this actor: `admin:<id>`, `api_key:<id>`, `cli`."},
    )
    action = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "Exactly this action, e.g. `referral.approve`."},
    )
    target = fields.String(
        validate=validate.Regexp(_TARGET, error="`type` or `type:id`, e.g. `referral:12`."),
        metadata={"description": "`type` (every `referral`) or `type:id` (`referral:12`).",
                  "pattern": TARGET_PATTERN},
    )  # fmt: skip
    from_ = ReportMoment(data_key="from", metadata={"description": "At or after this moment."})
    to = ReportMoment(metadata={"description": "Before this moment."})

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise ValidationError("Must be after `from`.", "to")


def audit_filter(query: dict) -> AuditFilter:
    """The service's filter for a loaded `AuditLogQuery`."""
    target_type = target_id = None
    if "target" in query:
        target_type, _, rest = query["target"].partition(":")
        target_id = rest or None
    return AuditFilter(
        actor=query.get("actor"),
        action=query.get("action"),
        target_type=target_type,
        target_id=target_id,
        since=query.get("from_"),
        until=query.get("to"),
    )


class AuditTargetSchema(StrictSchema):
    type = fields.String(attribute="object_type")
    id = fields.String(attribute="object_id")


class AuditEntrySchema(StrictSchema):
    """An `AuditLog` row: who changed what, and the object before and after (null for an
    object created, or deleted)."""

    id = fields.Integer()
    at = AwareDateTime(attribute="created_at")
    actor = fields.String(
        metadata={"description": "`admin:<id>` (console), `api_key:<id>`, `cli`."}
    )
    action = fields.String()
    target = Itself(AuditTargetSchema)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


AuditPageSchema = page_schema(AuditEntrySchema, "AuditLogPage")
