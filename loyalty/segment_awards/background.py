"""Running an award right after the request that made it, in a thread of the same process, so
a server without a worker (`make run`) awards it too. The thread starts when the response has
been sent (its transaction committed); if the process stops first, the `segment-awards` job
(`run-due`, the worker) picks the award up where it stopped."""

import threading

from flask import Flask, current_app
from werkzeug.wrappers import Response

from loyalty.extensions import db, lazy_session
from loyalty.segment_awards import service


def run_after(response: Response, award_id: int) -> Response:
    """Start the award in a background thread once `response` has been sent (unless
    SEGMENT_AWARDS_IN_BACKGROUND is off: then the job alone runs it)."""
    if not current_app.config["SEGMENT_AWARDS_IN_BACKGROUND"]:
        return response
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response.call_on_close(lambda: start(app, award_id))
    return response


def start(app: Flask, award_id: int) -> threading.Thread:
    thread = threading.Thread(
        target=_run, args=(app, award_id), name=f"segment-award-{award_id}", daemon=True
    )
    thread.start()
    return thread


def _run(app: Flask, award_id: int) -> None:
    with app.app_context():
        try:
            service.run(lazy_session(), award_id, app.config["JOB_BATCH_SIZE"])
        except Exception:  # marked failed by `run`; the job resumes it
            app.logger.exception("segment award %s stopped", award_id)
        finally:
            db.session.remove()
