"""Running an award right after the request that made it, in a thread of the same process, so
a server without a worker (`make run`) awards it too. The thread starts when the request ends
(at its teardown, after its transaction committed; not at all if the request failed), whatever
the client did meanwhile; if the process stops first, the `segment-awards` job (`run-due`, the
worker) picks the award up where it stopped."""

import threading

from flask import Flask, current_app, g

from loyalty import jobs
from loyalty.extensions import db, lazy_session
from loyalty.segment_awards import service

_TO_START = "segment_awards_to_start"


def run_after_request(award_id: int) -> None:
    """Start the award in a background thread once this request has ended (unless
    SEGMENT_AWARDS_IN_BACKGROUND is off: then the job alone runs it)."""
    if current_app.config["SEGMENT_AWARDS_IN_BACKGROUND"]:
        g.setdefault(_TO_START, []).append(award_id)


def start_requested(error: BaseException | None) -> None:
    """`teardown_request`: start the awards this request asked for, if it ended well (its
    transaction has committed by now; `loyalty.transaction` commits after the view)."""
    award_ids = g.pop(_TO_START, None)
    if not award_ids or error is not None:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for award_id in award_ids:
        start(app, award_id)


def start(app: Flask, award_id: int) -> threading.Thread:
    thread = threading.Thread(
        target=_run, args=(app, award_id), name=f"segment-award-{award_id}", daemon=True
    )
    thread.start()
    return thread


def _run(app: Flask, award_id: int) -> None:
    with app.app_context():
        try:
            service.run(lazy_session(), award_id, jobs.batch_size("segment-awards"))
        except Exception:  # marked failed by `run`; the job resumes it
            app.logger.exception("segment award %s stopped", award_id)
        finally:
            db.session.remove()
