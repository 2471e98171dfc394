"""Rewarding a segment in a real Chromium: preview, confirm twice (a double click, then the
same confirmation sent again), and the award runs once to done in the background."""

import re

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.segment_awards import service
from loyalty.segment_awards.models import SegmentAward
from loyalty.types import utcnow
from tests.test_segment_awards import add_members, balances

pytestmark = pytest.mark.browser


def test_award_bonus_points_to_a_segment_twice_with_one_confirmation_awards_once(
    console_page, live_console, screenshot
):
    app, _base = live_console
    app.config["JOB_BATCH_SIZE"] = 10  # a few chunks, as a big segment would take
    app.config["SEGMENT_AWARDS_IN_BACKGROUND"] = True  # as `make run` does
    with app.app_context():
        ids = add_members(db.session, 36)
        db.session.commit()
        db.session.remove()

    page = console_page("owner")
    page.goto(page.base + "/segment-awards/new?segment=new_subscribers")
    assert page.get_by_role("heading", name=re.compile("New subscribers")).is_visible()
    page.get_by_label("Points per member").fill("150")
    page.get_by_label("Reason").fill("Thanks for joining our spring launch")
    page.get_by_role("button", name="Preview").click()
    members = page.get_by_test_id("preview-members").inner_text()
    assert members == "36"  # the demo shopper has ordered: not a new subscriber
    assert page.get_by_test_id("preview-points").inner_text() == "5,400"
    screenshot(page, "segment-award-preview")

    confirm = page.locator("form.confirm")
    fields = confirm.locator("input").evaluate_all(
        "inputs => Object.fromEntries(inputs.map(input => [input.name, input.value]))"
    )
    assert {"csrf_token", "submission", "segment", "points", "reason"} <= set(fields)
    page.get_by_role("button", name="Confirm: award 5,400 points").dblclick()
    page.wait_for_url(re.compile(r".*/console/segment-awards/\d+$"))
    location = page.url
    resent = page.request.post(page.base + "/segment-awards", form=fields)  # the same again
    assert resent.ok and resent.url == location

    page.get_by_text("Done", exact=True).wait_for()  # htmx refreshed the progress
    assert page.locator("#award-bar").get_attribute("value") == "100"
    assert "36 of 36 members done" in page.locator(".progress-count").inner_text()
    screenshot(page, "segment-award-progress")
    assert page.foreign_requests == []

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SegmentAward)) == 1
        per_member = db.session.execute(
            select(LedgerEntry.member_id, func.count())
            .where(LedgerEntry.source_type == "segment_award")
            .group_by(LedgerEntry.member_id)
        ).all()
        assert sorted(per_member) == [(i, 1) for i in sorted(ids)]
        assert balances(db.session, ids) == {i: (150, 0, 150) for i in ids}
        assert find_drift(db.session) == []
        db.session.remove()

    page.goto(page.base + "/segment-awards")
    assert page.get_by_role("cell", name="Thanks for joining our spring launch").is_visible()
    screenshot(page, "segment-awards")


def test_the_progress_page_follows_an_award_as_it_runs(console_page, live_console, screenshot):
    app, _base = live_console
    with app.app_context():
        add_members(db.session, 30)
        award, _ = service.create(db.session, "new_subscribers", 20, "Loyalty week", actor="cli")
        db.session.commit()
        service._chunk(db.session, award.id, 12, utcnow())  # one chunk, as a worker would
        db.session.commit()
        award_id = award.id
        db.session.remove()

    page = console_page("admin")
    page.goto(page.base + "/segment-awards/new")  # no segment given: pick one
    page.get_by_role("link", name="At risk, high value").click()
    page.wait_for_url("**/segment-awards/new?segment=at_risk_high_value")
    page.go_back()
    screenshot(page, "segment-award-pick")

    page.goto(f"{page.base}/segment-awards/{award_id}")
    assert page.locator("#award-bar").get_attribute("value") == "40"
    assert "12 of 30 members done" in page.locator(".progress-count").inner_text()
    assert page.get_by_text("Awarding", exact=True).is_visible()
    screenshot(page, "segment-award-running")

    with app.app_context():
        assert service.run(db.session, award_id, 12) == 18  # the rest
        db.session.remove()
    page.get_by_text("Done", exact=True).wait_for()  # polled, not reloaded
    assert page.locator("#award-bar").get_attribute("value") == "100"
    assert page.url.endswith(f"/segment-awards/{award_id}")
