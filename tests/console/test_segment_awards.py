"""Rewarding a segment in the console: the form, the preview, a confirmation applied once, the
award's progress page and list, roles."""

import re

from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.segment_awards import service
from loyalty.segment_awards.models import SegmentAward
from tests.console.conftest import assert_strict_csp, csrf_token, post_form
from tests.test_segment_awards import add_members, balances

NEW = "/console/segment-awards/new?segment=new_subscribers"


def preview(client, points="50", reason="Thanks for joining"):
    data = {"segment": "new_subscribers", "points": points, "reason": reason}
    return post_form(client, "/console/segment-awards/preview", data, page=NEW)


def confirmation(html: str) -> dict:
    """The fields of the preview's confirmation form, as the browser would send them."""
    form = html.split('class="confirm"')[1].split("</form>")[0]
    return dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', form))


def test_the_form_shows_the_segment_and_the_preview_counts(console_client, session):
    add_members(session, 4)
    session.commit()
    client = console_client("admin")
    page = client.get(NEW)
    assert page.status_code == 200
    assert_strict_csp(page)
    html = page.get_data(as_text=True)
    assert "New subscribers" in html and 'name="points"' in html and 'name="reason"' in html
    assert ">Preview</button>" in html and "Confirm" not in html

    shown = preview(client)
    assert shown.status_code == 200
    html = shown.get_data(as_text=True)
    assert re.search(r'data-testid="preview-members">4<', html)
    assert re.search(r'data-testid="preview-points">200<', html)
    assert "Confirm: award 200 points" in html
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 0  # only a preview


def test_preview_refuses_what_the_api_refuses(console_client, session):
    client = console_client("admin")
    for points, reason, field in (("0", "x", "points"), ("5", "   ", "reason")):
        answer = preview(client, points, reason)
        assert answer.status_code == 422
        assert f'id="{field}-error"' in answer.get_data(as_text=True)
    assert client.get("/console/segment-awards/new?segment=vips").status_code == 404
    pick = client.get("/console/segment-awards/new").get_data(as_text=True)  # pick one here
    assert 'href="/console/segment-awards/new?segment=at_risk_high_value"' in pick


def test_the_same_confirmation_twice_awards_once(console_client, session):
    ids = add_members(session, 3)
    session.commit()
    client = console_client("admin")
    data = confirmation(preview(client, "30", "Spring bonus").get_data(as_text=True))
    assert data["submission"] and data["points"] == "30" and data["csrf_token"]

    first = client.post("/console/segment-awards", data=data)
    assert first.status_code == 303
    location = first.headers["Location"]
    assert re.search(r"/console/segment-awards/\d+$", location)
    again = client.post("/console/segment-awards", data=data)  # double click, or resent
    assert again.status_code == 303 and again.headers["Location"] == location
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 1
    award = session.scalar(select(SegmentAward))
    assert award.created_by == f"admin:{client.admin.id}" and award.member_count == 3
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "segment_award.create"))
    assert audit.actor == f"admin:{client.admin.id}"

    page = client.get(location).get_data(as_text=True)
    assert "That award was already made" in page
    assert '<progress id="award-bar" max="100" value="0"' in page
    assert 'hx-trigger="every 1s"' in page and 'http-equiv="refresh"' in page

    service.run(session, award.id, batch_size=2)
    page = client.get(location).get_data(as_text=True)
    assert '<progress id="award-bar" max="100" value="100"' in page
    assert "Done" in page and "hx-trigger" not in page and 'http-equiv="refresh"' not in page
    assert balances(session, ids) == {i: (30, 0, 30) for i in ids}
    count = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "bonus")
    assert session.scalar(count) == 3
    assert find_drift(session) == []

    partial = client.get(location, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert partial.startswith('<section id="award-progress"') and "<html" not in partial
    listing = client.get("/console/segment-awards").get_data(as_text=True)
    assert "Spring bonus" in listing and f"/console/segment-awards/{award.id}" in listing


def test_an_analyst_reads_awards_but_cannot_make_one(console_client, session):
    add_members(session, 1)
    award, _ = service.create(session, "new_subscribers", 5, "Read only", actor="t")
    session.commit()
    client = console_client("analyst")
    assert client.get(NEW).status_code == 403
    token = csrf_token(client.get("/console/segment-awards").get_data(as_text=True))
    data = {"segment": "new_subscribers", "points": "5", "reason": "x", "csrf_token": token}
    assert client.post("/console/segment-awards/preview", data=data).status_code == 403
    assert client.post("/console/segment-awards", data=data).status_code == 403
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 1
    assert client.get("/console/segment-awards").status_code == 200
    assert client.get(f"/console/segment-awards/{award.id}").status_code == 200
    support = console_client("support")
    assert support.get(NEW).status_code == 403


def test_a_failed_award_is_shown_with_its_error_and_resumed_from_the_console(
    console_client, session, app, monkeypatch
):
    ids = add_members(session, 2)
    award, _ = service.create(session, "new_subscribers", 9, "Again", actor="t")
    award.status, award.error = "failed", "OperationalError: server closed the connection"
    session.commit()
    client = console_client("admin")
    page = client.get(f"/console/segment-awards/{award.id}").get_data(as_text=True)
    assert "Stopped by an error" in page and "server closed the connection" in page
    assert ">Resume now</button>" in page
    analyst = console_client("analyst")
    shown = analyst.get(f"/console/segment-awards/{award.id}").get_data(as_text=True)
    assert "Resume now" not in shown
    path = f"/console/segment-awards/{award.id}/resume"
    assert post_form(analyst, path, {}, page="/console/segment-awards").status_code == 403

    started = []
    monkeypatch.setattr(
        "loyalty.segment_awards.background.start", lambda _app, i: started.append(i)
    )
    app.config["SEGMENT_AWARDS_IN_BACKGROUND"] = True
    try:
        answer = post_form(client, path, {}, page=f"/console/segment-awards/{award.id}")
    finally:
        app.config["SEGMENT_AWARDS_IN_BACKGROUND"] = False
    assert answer.status_code == 303 and started == [award.id]  # as the request ended
    service.run(session, award.id, 10)
    assert balances(session, ids) == {i: (9, 0, 9) for i in ids}


def test_a_segment_that_changed_since_the_preview_is_not_awarded_and_previewed_again(
    console_client, session
):
    add_members(session, 4)
    session.commit()
    client = console_client("admin")
    data = confirmation(preview(client, "10", "Seen four").get_data(as_text=True))
    assert data["members"] == "4"
    add_members(session, 1, prefix="joined")  # joins the segment after the preview
    session.commit()
    answer = client.post("/console/segment-awards", data=data)
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert "holds 5 members now, not the 4 previewed: nothing was awarded" in html
    assert re.search(r'data-testid="preview-members">5<', html)
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 0
    fresh = confirmation(html)
    assert fresh["members"] == "5" and fresh["submission"] != data["submission"]
    assert client.post("/console/segment-awards", data=fresh).status_code == 303
    assert session.scalar(select(SegmentAward.member_count)) == 5
