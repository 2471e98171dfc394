"""The unsubscribe link of every non-transactional email: a page that asks, a POST that
unsubscribes. The POST is also RFC 8058's one-click unsubscribe (`List-Unsubscribe-Post:
List-Unsubscribe=One-Click`), which mail clients send without showing the page."""

from flask import Blueprint, current_app, render_template

from loyalty.email import service
from loyalty.extensions import db

bp = Blueprint(
    "email",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/email/static",
)

# The page's address carries the member's token: it is never sent on as a Referer, never
# cached, never framed, and the page runs nothing but its own stylesheet.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _page(state: str, status: int = 200):
    program = current_app.config["EMAIL_PROGRAM_NAME"]
    html = render_template("email_pages/unsubscribe.html", program=program, state=state)
    return html, status, HEADERS


@bp.get("/email/unsubscribe/<token>")
def unsubscribe_page(token):
    """Asks before unsubscribing: a mail scanner following links changes nothing."""
    member = service.member_of_token(db.session, token)
    if member is None:
        return _page("unknown", 404)
    return _page("done" if member.email_unsubscribed_at else "ask")


@bp.post("/email/unsubscribe/<token>")
def unsubscribe(token):
    member = service.member_of_token(db.session, token)
    if member is None:
        return _page("unknown", 404)
    service.unsubscribe(db.session, member)
    return _page("done")
