"""Approving one held referral from several consoles and the API at once, on PostgreSQL with
real commits: the referrer is rewarded once, one decision is recorded, the others are told."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from console import accounts
from loyalty.audit import AuditLog
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from tests.console.conftest import PASSWORD, csrf_token, sign_in
from tests.console.test_referrals import submission_key
from tests.referrals.helpers import claim, code_of, enroll, order

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_concurrent_approvals_reward_the_referrer_once(pg_app, pg_keys):
    pg_app.config["ADMIN_PASSWORD_HASHING"] = "cheapest"
    api, admin = pg_app.test_client(), pg_keys["admin"]
    enroll(api, admin, "ana", "ana@example.com")
    order(api, admin, "ana", email="ana@example.com", days_ago=20, ip="203.0.113.5")
    body = claim(api, admin, code_of(api, admin, "ana"), "bea@example.com",
                 ip="203.0.113.5").get_json()  # fmt: skip
    assert body["status"] == "review"
    referral_id = body["referral_id"]
    order(api, admin, "bea", email="bea@example.com", days_ago=1)
    with pg_app.app_context():
        emails = [accounts.create_admin(db.session, f"support-{i}@example.com", "support",
                                        PASSWORD).email for i in range(6)]  # fmt: skip
        db.session.commit()
    page = f"/console/referrals/{referral_id}"
    ready = []
    for email in emails:
        client = pg_app.test_client()
        assert sign_in(client, email).status_code == 303
        html = client.get(page).get_data(as_text=True)
        form = {"csrf_token": csrf_token(html), "note": email,
                "submission": submission_key(html, f"{page}/approve")}  # fmt: skip
        ready.append((client, form))
    start = threading.Barrier(len(ready) + 1)

    def console_approve(i):
        client, form = ready[i]
        start.wait()
        return client.post(f"{page}/approve", data=form).status_code

    def api_approve():
        start.wait()
        return (
            pg_app.test_client()
            .post(f"/v1/referrals/{referral_id}/approve", json={}, headers=admin)
            .status_code
        )

    with ThreadPoolExecutor(max_workers=len(ready) + 1) as pool:
        console_answers = [pool.submit(console_approve, i) for i in range(len(ready))]
        api_answer = pool.submit(api_approve)
        statuses = [f.result() for f in console_answers] + [api_answer.result()]
    # One approval applied (303 from a console, or 200 from the API); the rest refused (409).
    assert sorted(statuses).count(409) == len(statuses) - 1, statuses
    assert set(statuses) - {409} <= {200, 303}
    with pg_app.app_context():
        ana = db.session.scalars(select(Member).where(Member.customer_id == "ana")).one()
        rewards = db.session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.member_id == ana.id, LedgerEntry.kind == "referral")
        )
        assert rewards == 1
        approvals = db.session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "referral.approve")
        )
        assert approvals == 1
        assert find_drift(db.session) == []
