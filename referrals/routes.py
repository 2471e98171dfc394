from flask import Blueprint as FlaskBlueprint
from flask import current_app, redirect, render_template, request
from flask.views import MethodView
from marshmallow import ValidationError

from loyalty.addresses import NotAnAddress, client_key
from loyalty.auth import current_principal, require
from loyalty.errors import NotFound, ReferralRejected
from loyalty.extensions import Blueprint, db
from loyalty.members.service import get_member
from loyalty.ratelimit import limit
from loyalty.schemas import PaginationQuery
from referrals import service
from referrals.schemas import (
    AdminReferralSchema,
    ApproveSchema,
    ClaimResultSchema,
    ClaimSchema,
    MemberReferralsSchema,
    ReferralPageSchema,
    ReferralProgramSchema,
    ReferralProgramUpdateSchema,
    ReferralQuery,
    RejectSchema,
)

blp = Blueprint("referrals", __name__, url_prefix="/v1", description="Referral program")
links = FlaskBlueprint("referral_links", __name__, template_folder="templates")


def _visitor() -> str:
    try:
        return client_key(request.remote_addr)
    except NotAnAddress:
        return service.UNKNOWN_CLIENT


@links.get("/r/<string:code>")
@limit("referral-click", _visitor, config_key="REFERRAL_CLICK_RATE_LIMIT")
def follow(code):
    """A share link: record the click, send the visitor to the landing page with the code."""
    url = service.follow_link(
        db.session, code, request.remote_addr, request.headers.get("User-Agent"),
        dedup_seconds=current_app.config["REFERRAL_CLICK_DEDUP_SECONDS"],
    )  # fmt: skip
    return redirect(url, 302)


def _demo_only():
    if current_app.config["LOYALTY_ENV"] == "production":
        raise NotFound()


@links.get("/welcome")
def welcome():
    """Where a share link lands when the program names no landing page (not in production):
    the demo storefront with the friend's offer, keeping `ref` and `click` for the claim."""
    _demo_only()
    offer = service.landing_offer(db.session, request.args.get("ref", ""))
    return render_template("referrals/welcome.html", click=request.args.get("click"), **offer)


@links.post("/welcome")
def welcome_claim():
    """The landing page's form: claim the referral as a storefront's server would, with the
    visitor's address and user agent, and show the friend's reward code."""
    _demo_only()
    form = request.form
    offer = service.landing_offer(db.session, form.get("ref", ""))
    given = {
        "code": offer["code"],
        "email": form.get("email", ""),
        "click": form.get("click") or None,
        "ip": request.remote_addr,
        "user_agent": request.headers.get("User-Agent"),
    }
    page = {"click": given["click"], "email": given["email"], **offer}
    try:
        data = ClaimSchema().load({k: v for k, v in given.items() if v is not None})
        claimed = ClaimResultSchema().dump(service.claim(db.session, data))
    except ValidationError:
        return render_template("referrals/welcome.html", refusal="Check your email.", **page), 422
    except ReferralRejected as refused:
        return render_template("referrals/welcome.html", refusal=refused.detail, **page), 422
    return render_template("referrals/welcome.html", claimed=claimed, **page), 201


@blp.route("/referral-program")
class ReferralProgram(MethodView):
    @require("admin")
    @blp.response(200, ReferralProgramSchema)
    def get(self):
        return service.settings_view(service.get_settings(db.session))

    @require("admin")
    @blp.arguments(ReferralProgramUpdateSchema)
    @blp.response(200, ReferralProgramSchema)
    def put(self, changes):
        return service.settings_view(service.update_settings(db.session, changes))


@blp.route("/referrals/claim")
class Claim(MethodView):
    @require("storefront")
    @blp.arguments(ClaimSchema)
    @blp.response(201, ClaimResultSchema)
    def post(self, data):
        return service.claim(db.session, data)


@blp.route("/referrals")
class Referrals(MethodView):
    @require("admin")
    @blp.arguments(ReferralQuery, location="query")
    @blp.response(200, ReferralPageSchema)
    def get(self, query):
        return service.list_referrals(
            db.session, query.get("status"), query["limit"], query["cursor"]
        )


@blp.route("/referrals/<int:referral_id>")
class ReferralView(MethodView):
    @require("admin")
    @blp.response(200, AdminReferralSchema)
    def get(self, referral_id):
        return service.admin_view(db.session, service.get_referral(db.session, referral_id))


@blp.route("/referrals/<int:referral_id>/approve")
class Approve(MethodView):
    @require("admin")
    @blp.arguments(ApproveSchema)
    @blp.response(200, AdminReferralSchema)
    def post(self, data, referral_id):
        actor = current_principal().audit_name
        referral = service.approve(db.session, referral_id, data.get("note"), actor)
        return service.admin_view(db.session, referral)


@blp.route("/referrals/<int:referral_id>/reject")
class Reject(MethodView):
    @require("admin")
    @blp.arguments(RejectSchema)
    @blp.response(200, AdminReferralSchema)
    def post(self, data, referral_id):
        actor = current_principal().audit_name
        referral = service.reject(db.session, referral_id, data["reason"], actor)
        return service.admin_view(db.session, referral)


@blp.route("/members/<string:customer_id>/referrals")
class MemberReferrals(MethodView):
    @require("storefront")
    @blp.arguments(PaginationQuery, location="query")
    @blp.response(200, MemberReferralsSchema)
    def get(self, query, customer_id):
        member = get_member(db.session, customer_id)
        return service.member_stats(db.session, member, query["limit"], query["cursor"])
