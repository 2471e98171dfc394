from flask import jsonify
from flask.views import MethodView

from loyalty.auth import current_principal, require
from loyalty.extensions import Blueprint, db
from loyalty.hooks import hooks
from loyalty.members import service
from loyalty.members.schemas import (
    AdjustmentSchema,
    EntryPageSchema,
    EntrySchema,
    MemberCreateSchema,
    MemberExportSchema,
    MemberSchema,
)
from loyalty.schemas import PaginationQuery

blp = Blueprint("members", __name__, url_prefix="/v1/members", description="Members")


@blp.route("")
class Members(MethodView):
    @require("storefront")
    @blp.arguments(MemberCreateSchema)
    @blp.response(201, MemberSchema)
    @blp.alt_response(200, schema=MemberSchema, description="The member already existed")
    def post(self, data):
        member, created = service.enroll_from_api(db.session, hooks(), data)
        return service.load_member_view(db.session, hooks(), member), 201 if created else 200


@blp.route("/<string:customer_id>")
class MemberView(MethodView):
    @require("storefront", config_checked_by_view=True)
    @blp.response(200, MemberSchema)
    def get(self, customer_id):
        # The fast path: what MemberSchema dumps, written by hand (tests hold them equal).
        return jsonify(service.get_member_view(db.session, hooks(), customer_id))

    @require("admin")
    @blp.response(204)
    def delete(self, customer_id):
        member = service.get_member(db.session, customer_id, lock=True)
        service.erase(db.session, hooks(), member)


@blp.route("/<string:customer_id>/export")
class Export(MethodView):
    @require("admin")
    @blp.response(200, MemberExportSchema)
    def get(self, customer_id):
        """Everything held about the member (what erasure removes)."""
        member = service.get_member(db.session, customer_id)
        return service.export(db.session, hooks(), member)


@blp.route("/<string:customer_id>/activity")
class Activity(MethodView):
    @require("storefront")
    @blp.arguments(PaginationQuery, location="query")
    @blp.response(200, EntryPageSchema)
    def get(self, query, customer_id):
        member = service.get_member(db.session, customer_id)
        return service.activity(db.session, member, query["limit"], query["cursor"])


@blp.route("/<string:customer_id>/adjustments")
class Adjustments(MethodView):
    @require("admin")
    @blp.arguments(AdjustmentSchema)
    @blp.response(201, EntrySchema)
    def post(self, data, customer_id):
        member = service.get_member(db.session, customer_id)
        actor = current_principal().audit_name
        entry = service.adjust(db.session, member, data["points"], data["reason"], actor)
        return entry
