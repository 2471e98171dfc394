from flask import Response, current_app, request
from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.hooks import hooks
from loyalty.orders import batch, service
from loyalty.orders.schemas import (
    EventBatchResultSchema,
    EventBatchSchema,
    EventResultSchema,
    EventSchema,
)
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


@blp.route("/batch")
class EventBatch(MethodView):
    # The batch is one transaction, each event idempotent by its id: safe to run again whole.
    @require("storefront", config_checked_by_view=True, rerun_on_transient=True)
    @blp.arguments(EventBatchSchema())
    @blp.response(200, EventBatchResultSchema)
    def post(self, data: dict) -> Response:
        """Apply up to 500 order events, each exactly once and answered as `POST /v1/events`
        would answer it, in order; an event refused is answered with its problem, the others
        stand."""
        session = db.session()
        events = data["events"]
        outcomes = on_deadlock(
            session,
            lambda: batch.apply_events(session, hooks(), events),
            f"A batch of {len(events)} events",
        )
        results = ",".join(outcome.as_json() for outcome in outcomes)
        return current_app.response_class(
            f'{{"results":[{results}]}}\n', mimetype="application/json"
        )
