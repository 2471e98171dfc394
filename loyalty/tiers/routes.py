from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.members import service as members
from loyalty.paging import Page
from loyalty.schemas import PaginationQuery
from loyalty.tiers import service
from loyalty.tiers.schemas import (
    PreviewResultSchema,
    PreviewSchema,
    TierChangePageSchema,
    TierListSchema,
    TierSchema,
    TierUpdateSchema,
)

blp = Blueprint("tiers", __name__, url_prefix="/v1", description="Tiers and tier changes")


@blp.route("/tiers")
class Tiers(MethodView):
    @require("admin")
    @blp.response(200, TierListSchema)
    def get(self):
        """Every tier, lowest threshold first."""
        return Page(service.all_tiers(db.session))

    @require("admin")
    @blp.arguments(TierSchema)
    @blp.response(201, TierSchema)
    def post(self, data):
        """Add a tier; members who now qualify for it move at once."""
        return service.create_tier(db.session, data)


@blp.route("/tiers/preview")
class TierPreview(MethodView):
    @require("admin")
    @blp.arguments(PreviewSchema)
    @blp.response(200, PreviewResultSchema)
    def post(self, data):
        """How many members would move between which tiers under this list; changes nothing."""
        return service.preview(db.session, data["tiers"], basis=data.get("tier_basis"))


@blp.route("/tiers/<int32:tier_id>")
class TierView(MethodView):
    @require("admin")
    @blp.response(200, TierSchema)
    def get(self, tier_id):
        return service.get_tier(db.session, tier_id)

    @require("admin")
    @blp.arguments(TierUpdateSchema)
    @blp.response(200, TierSchema)
    def patch(self, changes, tier_id):
        return service.update_tier(db.session, tier_id, changes)

    @require("admin")
    @blp.response(204)
    def delete(self, tier_id):
        service.delete_tier(db.session, tier_id)


@blp.route("/members/<string:customer_id>/tier-changes")
class MemberTierChanges(MethodView):
    @require("storefront")
    @blp.arguments(PaginationQuery, location="query")
    @blp.response(200, TierChangePageSchema)
    def get(self, query, customer_id):
        """The member's tier history, newest first (upgrades, refunds, period closes)."""
        member = members.get_member(db.session, customer_id)
        return service.tier_changes(db.session, member, query["limit"], query["cursor"])
