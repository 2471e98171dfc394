"""The console's audit log: filters (who, what, which object, when), paging, the diff of each
change, and who may read it."""

import re
from datetime import UTC, datetime, timedelta

from console import audit
from loyalty.audit import AuditLog

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add(session, actor, action, object_type, object_id, *, days=0, before=None, after=None):
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            created_at=T0 + timedelta(days=days),
        )  # fmt: skip
    )
    session.flush()


def entries(html: str) -> list[str]:
    return re.findall(r'<span class="mono">([a-z_.]+)</span>', html)


def test_the_log_lists_changes_newest_first_with_the_admins_email(console_client, session):
    owner = console_client("owner")
    add(session, f"admin:{owner.admin.id}", "program.update", "program", 1,
        before={"pending_days": 30, "currency": "USD"},
        after={"pending_days": 14, "currency": "USD"})  # fmt: skip
    add(session, "api_key:9", "referral.reject", "referral", 12, days=1,
        before={"status": "review"},
        after={"status": "rejected", "note": "same household"})  # fmt: skip
    session.commit()
    html = owner.get("/console/audit").get_data(as_text=True)
    assert entries(html)[:2] == ["referral.reject", "program.update"]
    assert owner.admin.email in html
    assert 'href="/console/referrals/12"' in html
    # The diff: every field, the changed ones marked.
    assert re.search(r'<tr class="changed">\s*<th scope="row">pending_days', html)
    assert re.search(r"<tr>\s*<th scope=\"row\">currency</th>", html)
    assert "1 field changed: pending_days" in html
    assert "2 fields changed: status, note" in html


def test_filters(console_client, session):
    owner = console_client("owner")
    add(session, "admin:999999", "referral.approve", "referral", 7, days=0)
    add(session, "api_key:2", "program.update", "program", 1, days=1)
    add(session, f"admin:{owner.admin.id}", "referral.reject", "referral", 8, days=2)
    add(session, "cli", "member.adjust", "member", 3, days=3)
    session.commit()

    def shown(**query):
        answer = owner.get("/console/audit", query_string=query)
        assert answer.status_code == 200
        return entries(answer.get_data(as_text=True))

    assert shown(action="referral.approve") == ["referral.approve"]
    assert shown(who=owner.admin.email) == ["referral.reject"]
    by_cli = shown(who="cli")  # the command line: this change, and the test's admin accounts
    assert by_cli[0] == "member.adjust" and set(by_cli) == {"member.adjust", "admin.create"}
    assert shown(target="referral") == ["referral.reject", "referral.approve"]
    assert shown(target="referral:7") == ["referral.approve"]
    assert shown(**{"from": "2026-11-02", "to": "2026-11-03"}) == [
        "referral.reject", "program.update",
    ]  # fmt: skip
    assert shown(action="program.update", who="cli") == []
    assert shown(**{"from": "2026-11-02", "to": "2026-11-03"}, target="program") == [
        "program.update"
    ]
    html = owner.get("/console/audit").get_data(as_text=True)
    for action in ("member.adjust", "program.update", "referral.approve", "referral.reject"):
        assert f'<option value="{action}"' in html  # the actions to choose from


def test_a_filter_that_cant_be_read_is_explained(console_client, session):
    owner = console_client("owner")
    bad = owner.get("/console/audit?from=yesterday")
    assert bad.status_code == 422
    assert 'id="f-from-error"' in bad.get_data(as_text=True)
    unknown = owner.get("/console/audit?who=nobody@example.com")
    assert unknown.status_code == 422
    assert "No admin has the email nobody@example.com" in unknown.get_data(as_text=True)
    backwards = owner.get("/console/audit?from=2026-11-03&to=2026-11-01")
    assert backwards.status_code == 422


def test_pages_keep_the_filters(console_client, session, monkeypatch):
    monkeypatch.setattr(audit, "PAGE_SIZE", 2)
    owner = console_client("owner")
    for day in range(3):
        add(session, "cli", "member.adjust", "member", day, days=day)
    add(session, "cli", "program.update", "program", 1, days=5)
    session.commit()
    html = owner.get("/console/audit?action=member.adjust").get_data(as_text=True)
    assert entries(html) == ["member.adjust", "member.adjust"]
    next_url = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    assert "action=member.adjust" in next_url
    rest = owner.get(next_url).get_data(as_text=True)
    assert entries(rest) == ["member.adjust"]
    assert 'rel="next"' not in rest


def test_the_diff_of_a_creation_and_of_nested_fields():
    lines = audit.diff(None, {"name": "VIB", "perks": ["a"]})
    assert [(x.field, x.before, x.after, x.changed) for x in lines] == [
        ("name", "", "VIB", True),
        ("perks", "", '["a"]', True),
    ]
    lines = audit.diff(
        {"friend_reward": {"kind": "amount_off", "amount": 1000}, "enabled": True},
        {"friend_reward": {"kind": "percent_off", "percent": 15}, "enabled": True},
    )
    assert [(x.field, x.changed) for x in lines] == [
        ("friend_reward.kind", True),
        ("friend_reward.amount", True),
        ("enabled", False),
        ("friend_reward.percent", True),
    ]


def test_only_owners_and_admins_read_the_log(console_client):
    assert console_client("admin").get("/console/audit").status_code == 200
    for role in ("support", "analyst"):
        client = console_client(role)
        assert client.get("/console/audit").status_code == 403
        assert ">Audit log</a>" not in client.get("/console/profile").get_data(as_text=True)


def test_an_object_that_appears_in_place_of_null_shows_its_fields():
    lines = audit.diff({"reward": None, "status": "review"},
                       {"reward": {"points": 500}, "status": "converted"})  # fmt: skip
    assert [(x.field, x.before, x.after) for x in lines] == [
        ("status", "review", "converted"),
        ("reward.points", "", "500"),
    ]
