from flask import Response, current_app, request
from flask.views import MethodView

from loyalty.actions import service
from loyalty.actions.schemas import ActionResultSchema, ActionSchema
from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.orders.service import body_hash
from loyalty.transaction import on_deadlock

blp = Blueprint("member_actions", __name__, url_prefix="/v1/members", description="Custom actions")


@blp.route("/<string:customer_id>/actions")
class Actions(MethodView):
    # One transaction, idempotent by the action's id: safe to run again inside the request.
    @require("storefront", rerun_on_transient=True)
    @blp.arguments(ActionSchema())
    @blp.response(200, ActionResultSchema)
    def post(self, data: dict, customer_id: str) -> Response:
        """Reward a customer action (a review, a follow...) exactly once; sent again, the
        same answer with `duplicate: true`."""
        digest = body_hash(request.get_json())
        session = db.session()
        answer = on_deadlock(
            session,
            lambda: service.record_action(session, customer_id, data, digest),
            f"Action {data['id']!r}",
        )
        return current_app.response_class(f"{answer}\n", mimetype="application/json")
