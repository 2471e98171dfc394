from flask import g, request
from flask.views import MethodView

from loyalty import idempotency
from loyalty.auth import require
from loyalty.errors import ValidationFailed
from loyalty.extensions import Blueprint, db
from loyalty.schemas import Int32PaginationQuery
from loyalty.segment_awards import background, service
from loyalty.segment_awards.schemas import (
    SegmentAwardCreateSchema,
    SegmentAwardPageSchema,
    SegmentAwardSchema,
)

blp = Blueprint(
    "segment_awards",
    __name__,
    url_prefix="/v1/segment-awards",
    description=(
        "Bonus points for every member of an RFM segment (admin scope). The members are taken "
        "when the award is made (the segment as `GET /v1/reports/segments` counts it with its "
        "default thresholds); the points are then awarded in chunks, in the background and by "
        "the `segment-awards` job, each member exactly once, each with a ledger entry "
        '(kind `bonus`, source `segment_award`, "Bonus: <reason>").'
    ),
)


@blp.route("")
class SegmentAwards(MethodView):
    @require("admin")
    @blp.arguments(Int32PaginationQuery, location="query")
    @blp.response(200, SegmentAwardPageSchema)
    def get(self, query):
        """The awards, newest first."""
        return service.list_awards(db.session, query["limit"], query["cursor"])

    @require("admin")
    @blp.arguments(SegmentAwardCreateSchema)
    @blp.response(202, SegmentAwardSchema)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": idempotency.HEADER,
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Required here: the same key makes the award once.",
            }
        ]
    )
    def post(self, data):
        """Award `points` to each member of `segment` now, for `reason`. Requires an
        `Idempotency-Key`: the same key makes the award once (also once its stored answer has
        expired). Answers at once with the award pending; follow it with
        `GET /v1/segment-awards/{id}`."""
        key = request.headers.get(idempotency.HEADER)
        if not key:
            raise ValidationFailed(
                "An Idempotency-Key is required: the same key makes the award once.",
                errors={idempotency.HEADER: ["Required."]},
            )
        award, created = service.create(
            db.session,
            data["segment"],
            data["points"],
            data["reason"],
            key=f"api:{g.principal.audit_name}:{key}",
            expected_members=data.get("expected_members"),
        )
        if created:
            background.run_after_request(award.id)
        return award


@blp.route("/<int32:award_id>")
class SegmentAwardItem(MethodView):
    @require("admin")
    @blp.response(200, SegmentAwardSchema)
    def get(self, award_id):
        """The award: status, members done of `member_count`, `progress` in percent."""
        return service.get(db.session, award_id)
