from marshmallow import fields, validate

from loyalty.reports.service import SEGMENTS
from loyalty.schemas import MAX_POINTS, AwareDateTime, StrictSchema, page_schema
from loyalty.segment_awards import service
from loyalty.segment_awards.models import STATUSES
from loyalty.segment_awards.service import MAX_REASON


class SegmentAwardCreateSchema(StrictSchema):
    segment = fields.String(
        required=True,
        validate=validate.OneOf(SEGMENTS),
        metadata={"description": "An RFM segment of `GET /v1/reports/segments`."},
    )
    points = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(1, MAX_POINTS),
        metadata={"description": "Bonus points for each member of the segment."},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(1, MAX_REASON),
        metadata={"description": 'Members see "Bonus: <reason>" in their activity.'},
    )
    expected_members = fields.Integer(
        strict=True,
        validate=validate.Range(0, 2**63 - 1),
        metadata={
            "description": "Optional: the member count a preview showed; if the segment holds "
            "another number when the award is made, 409 `conflict` and nothing is made."
        },
    )


class SegmentAwardSchema(StrictSchema):
    """A `SegmentAward`: what it gives to whom, and how far it has got."""

    id = fields.Integer()
    segment = fields.String()
    points = fields.Integer(metadata={"description": "Points per member."})
    reason = fields.String()
    status = fields.String(
        metadata={
            "description": " | ".join(STATUSES) + ": failed stops at a chunk's error; the "
            "`segment-awards` job resumes pending, running and failed awards.",
            "enum": list(STATUSES),
        }
    )
    as_of = AwareDateTime(metadata={"description": "When the segment's members were taken."})
    member_count = fields.Integer(metadata={"description": "Members of the segment then."})
    members_done = fields.Integer()
    members_awarded = fields.Integer()
    members_skipped = fields.Integer(
        metadata={"description": "Erased since, or the points would pass the balance limit."}
    )
    points_total = fields.Function(
        lambda award: award.member_count * award.points, metadata={"type": "integer"}
    )
    points_awarded = fields.Integer()
    progress = fields.Function(
        service.progress,
        metadata={"type": "integer", "description": "Percent of the members done."},
    )
    created_by = fields.String()
    created_at = AwareDateTime()
    started_at = AwareDateTime(allow_none=True)
    finished_at = AwareDateTime(allow_none=True)
    error = fields.String(allow_none=True)


SegmentAwardPageSchema = page_schema(SegmentAwardSchema, "SegmentAwardPage")
