from flask import Response, current_app, request
from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.hooks import hooks
from loyalty.orders import service
from loyalty.orders.schemas import EventResultSchema, EventSchema
from loyalty.transaction import on_deadlock

blp = Blueprint("events", __name__, url_prefix="/v1/events", description="Order events")


@blp.route("")
class Events(MethodView):
    # The event is one transaction, idempotent by its id: safe to run again inside the request.
    @require("storefront", config_checked_by_view=True, rerun_on_transient=True)
    @blp.arguments(EventSchema())  # one instance: building it per request costs ~1 ms
    @blp.response(200, EventResultSchema)
    def post(self, data: dict) -> Response:
        """Apply an order event exactly once; a repeat gets the same answer."""
        digest = service.body_hash(request.get_json())
        session = db.session()  # the request's session itself: no proxy lookup per use
        answer = on_deadlock(
            session,
            lambda: service.answer_event(session, hooks(), data, digest),
            f"Event {data['id']!r}",
        )
        # Sent as encoded for the event's row (EventResultSchema's fields, as jsonify sends).
        return current_app.response_class(f"{answer}\n", mimetype="application/json")
