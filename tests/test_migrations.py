"""Migrations are the schema: one linear history, up and down, matching the models."""

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from loyalty.extensions import db
from tests.conftest import clone_pg, make_app


def script_directory(app) -> ScriptDirectory:
    migrate = app.extensions["migrate"]
    return ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))


def test_history_is_one_line(app):
    with app.app_context():
        scripts = script_directory(app)
        assert len(scripts.get_heads()) == 1
        assert len(scripts.get_bases()) == 1
        for revision in scripts.walk_revisions():
            assert not revision.is_merge_point


def test_models_and_migrations_agree(app, session):
    """Fails when a model changes without a migration (what `flask db check` does)."""
    connection = session.connection()
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences = compare_metadata(context, db.metadata)
    assert differences == []


def _down_and_up(url):
    app = make_app(url)
    with app.app_context():
        downgrade(revision="base")
        upgrade()
        connection = db.engine.connect()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
        assert context.get_current_revision() == script_directory(app).get_current_head()
        connection.close()
        db.engine.dispose()


def test_downgrade_to_base_and_upgrade_again_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    _down_and_up(url)


@pytest.mark.postgres
def test_downgrade_to_base_and_upgrade_again_on_postgresql(pg_template):
    _down_and_up(clone_pg(pg_template, "roundtrip"))


def test_fresh_database_has_the_default_program_and_base_tier(client, admin):
    program = client.get("/v1/program", headers=admin).get_json()
    assert program["currency"] == "USD"
    assert program["timezone"] == "UTC"
    assert program["points_per_unit"] == "1"
    assert program["pending_days"] == 30
    assert program["expiry_inactive_days"] is None
    assert program["qualifying_period"] == "calendar_year"
    assert program["auto_enroll"] is True


def _marks_after_0008(url, *, at_head: bool):
    """0008 marks exactly the members a waiting referral names (by customer id or mailbox)."""
    app = make_app(url)
    with app.app_context():
        (downgrade if at_head else upgrade)(revision="0007")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO members (customer_id, email_normalized, enrolled_at, points_available,"
                " points_pending, points_lifetime) VALUES"
                " ('by_id', 'x@example.com', :t, 0, 0, 0), ('by_mail', 'bea@example.com', :t, 0,"
                " 0, 0), ('done', 'cleo@example.com', :t, 0, 0, 0), ('nobody', NULL, :t, 0, 0, 0)"
            ), {"t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
            referrer = conn.execute(text("SELECT id FROM members WHERE customer_id = 'nobody'"))
            referrer = referrer.scalar()
            rows = [("claimed", "by_id", None, None), ("review", None, "bea@example.com", None),
                    ("claimed", None, "cleo@example.com", "ord_1")]  # fmt: skip
            for status, customer_id, email, order_id in rows:
                conn.execute(text(
                    "INSERT INTO referrals (referrer_id, code, status, source, friend_customer_id,"
                    " friend_email, order_id, flags, created_at, updated_at) VALUES (:r, 'C',"
                    " :s, 'claim', :c, :e, :o, '[]', :t, :t)"
                ), {"r": referrer, "s": status, "c": customer_id, "e": email, "o": order_id,
                    "t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
        upgrade(revision="0008")
        with db.engine.connect() as conn:
            marks = dict(
                conn.execute(text("SELECT customer_id, referral_check FROM members")).all()
            )
        db.engine.dispose()
    assert {k: bool(v) for k, v in marks.items()} == {
        "by_id": True, "by_mail": True, "done": False, "nobody": False,
    }  # fmt: skip


def test_0008_marks_the_members_waiting_referrals_name_on_sqlite(tmp_path):
    _marks_after_0008(f"sqlite:///{tmp_path / 'marks.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_0008_marks_the_members_waiting_referrals_name_on_postgresql(pg_template):
    _marks_after_0008(clone_pg(pg_template, "marks"), at_head=True)


def _sealing_by_0013(url, *, at_head: bool):
    """0013 seals webhook secrets and stored replies (downgrading opens them again), and takes
    the view of members erased earlier out of stored event answers."""
    from loyalty.sealing import IDEMPOTENT_REPLY, WEBHOOK_SECRET, Sealer

    app = make_app(url)
    secret, reply = "whsec_" + "Q" * 32, '{"code":"ABCD-EFGH-JKLM-NPQR"}\n'
    erased = {"event_id": "evt_gone", "duplicate": False, "effects": [],
              "member": {"id": "gone", "email": "gone@example.com"}}  # fmt: skip
    converted = {"kind": "referral", "status": "converted", "referrer_id": "gone"}
    kept = {"event_id": "evt_here", "duplicate": False, "member": {"id": "here"},
            "effects": [converted]}  # fmt: skip
    with app.app_context():
        (downgrade if at_head else upgrade)(revision="0012")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO webhook_endpoints (url, events, secret, created_at)"
                " VALUES ('http://127.0.0.1:9/h', '[]', :s, :t)"
            ), {"s": secret, "t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
            conn.execute(text(
                "INSERT INTO idempotency_keys (principal, key, request_hash, status_code,"
                " content_type, body, created_at) VALUES ('api_key:1', 'k', 'h', 201,"
                " 'application/json', :b, :t)"
            ), {"b": reply, "t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
            conn.execute(text(
                "INSERT INTO members (customer_id, enrolled_at, points_available, points_pending,"
                " points_lifetime) VALUES ('here', :t, 0, 0, 0)"
            ), {"t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
            for answer in (erased, kept):
                conn.execute(text(
                    "INSERT INTO processed_events (event_id, type, body_hash, response, created_at)"
                    " VALUES (:e, 'order.paid', 'h', :r, :t)"
                ), {"e": answer["event_id"], "r": json.dumps(answer),
                    "t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
        upgrade()
        with db.engine.connect() as conn:
            stored_secret = conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar()
            stored_reply = conn.execute(text("SELECT body FROM idempotency_keys")).scalar()
            answers = dict(
                conn.execute(text("SELECT event_id, response FROM processed_events")).all()
            )
        keys = app.config["SECRET_KEYS"]
        assert secret not in stored_secret and "ABCD" not in stored_reply
        assert Sealer(keys, WEBHOOK_SECRET).unseal(stored_secret) == secret
        assert Sealer(keys, IDEMPOTENT_REPLY).unseal(stored_reply) == reply
        answers = {k: json.loads(v) if isinstance(v, str) else v for k, v in answers.items()}
        assert answers["evt_gone"] == {**erased, "member": None}
        assert answers["evt_here"]["member"] == {"id": "here"}
        assert answers["evt_here"]["effects"][0]["referrer_id"] is None
        downgrade(revision="0012")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar() == secret
            assert conn.execute(text("SELECT body FROM idempotency_keys")).scalar() == reply
        upgrade()
        db.engine.dispose()


def test_0013_seals_secrets_and_replies_on_sqlite(tmp_path):
    _sealing_by_0013(f"sqlite:///{tmp_path / 'sealing.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_0013_seals_secrets_and_replies_on_postgresql(pg_template):
    _sealing_by_0013(clone_pg(pg_template, "sealing"), at_head=True)


def _addresses_after_0012(url, *, at_head: bool):
    """0012 stores referral IPs in one spelling with the key the per-IP cap counts; text that
    is no address stays, keyed by itself. The program gets the new settings' defaults."""
    app = make_app(url)
    with app.app_context():
        (downgrade if at_head else upgrade)(revision="0011")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO members (customer_id, enrolled_at, points_available,"
                " points_pending, points_lifetime) VALUES ('ana', :t, 0, 0, 0)"
            ), {"t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
            referrer = conn.execute(text("SELECT id FROM members")).scalar()
            for n, ip in enumerate(["::ffff:203.0.113.9", "2001:0db8::0001", "not an ip", None]):
                conn.execute(text(
                    "INSERT INTO referrals (referrer_id, code, status, source, friend_email, ip,"
                    " flags, created_at, updated_at) VALUES (:r, 'C', 'claimed', 'claim', :e,"
                    " :ip, '[]', :t, :t)"
                ), {"r": referrer, "e": f"f{n}@example.com", "ip": ip,
                    "t": "2026-01-01 00:00:00+00:00"})  # fmt: skip
        upgrade(revision="0012")
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT ip, ip_key FROM referrals ORDER BY id")).all()
            program = conn.execute(text(
                "SELECT min_order_amount, reward_hold_days, missing_ip FROM referral_settings"
            )).one()  # fmt: skip
        if at_head:
            upgrade()
        db.engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("203.0.113.9", "203.0.113.9"), ("2001:db8::1", "2001:db8::/64"),
        ("not an ip", "not an ip"), (None, None),
    ]  # fmt: skip
    assert tuple(program) == (1, 14, "review")


def test_0012_gives_referral_addresses_one_spelling_on_sqlite(tmp_path):
    _addresses_after_0012(f"sqlite:///{tmp_path / 'addresses.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_0012_gives_referral_addresses_one_spelling_on_postgresql(pg_template):
    _addresses_after_0012(clone_pg(pg_template, "addresses"), at_head=True)


def _tier_ids_by_0018(url, *, at_head: bool):
    """0018 moves each rule's tier names into earning_rule_tiers (by id, in the order given);
    a rule left with none of its tiers is made inactive; downgrading writes the names, as they
    are then, back into the rule's conditions."""
    app = make_app(url)
    t = "2026-01-01 00:00:00+00:00"
    rules = {
        "both": {"tiers": ["Rouge", "VIB", "Rouge"], "min_spend": 100},
        "skus": {"skus": ["A"]},
        "gone": {"tiers": ["Gone"]},
        "some": {"tiers": ["Gone", "VIB"]},
    }
    with app.app_context():
        (downgrade if at_head else upgrade)(revision="0017")
        with db.engine.begin() as conn:
            for name, threshold in (("VIB", 35_000), ("Rouge", 100_000)):
                conn.execute(text(
                    "INSERT INTO tiers (name, threshold, multiplier, perks, created_at)"
                    " VALUES (:n, :h, 1, '[]', :t)"
                ), {"n": name, "h": threshold, "t": t})  # fmt: skip
            for name, conditions in rules.items():
                conn.execute(text(
                    "INSERT INTO earning_rules (name, \"trigger\", points, conditions, active,"
                    " created_at, updated_at) VALUES (:n, 'order', 5, :c, true, :t, :t)"
                ), {"n": name, "c": json.dumps(conditions), "t": t})  # fmt: skip
        upgrade(revision="0018")

        def read(conn):
            rows = conn.execute(
                text("SELECT name, conditions, active FROM earning_rules ORDER BY id")
            ).all()
            return {n: (json.loads(c) if isinstance(c, str) else c, bool(a)) for n, c, a in rows}

        with db.engine.begin() as conn:
            links = conn.execute(text(
                "SELECT r.name, t.name, l.position FROM earning_rule_tiers l"
                " JOIN earning_rules r ON r.id = l.rule_id JOIN tiers t ON t.id = l.tier_id"
                " ORDER BY r.id, l.position"
            )).all()  # fmt: skip
            stored = read(conn)
            conn.execute(text("UPDATE tiers SET name = 'Very Important' WHERE name = 'VIB'"))
        assert [tuple(row) for row in links] == [
            ("both", "Rouge", 0), ("both", "VIB", 1), ("some", "VIB", 0),
        ]  # fmt: skip
        assert stored == {
            "both": ({"min_spend": 100}, True),
            "skus": ({"skus": ["A"]}, True),
            "gone": ({}, False),
            "some": ({}, True),
        }
        downgrade(revision="0017")
        with db.engine.connect() as conn:
            restored = read(conn)
        assert restored == {
            "both": ({"tiers": ["Rouge", "Very Important"], "min_spend": 100}, True),
            "skus": ({"skus": ["A"]}, True),
            "gone": ({}, False),
            "some": ({"tiers": ["Very Important"]}, True),
        }
        upgrade()
        db.engine.dispose()


def test_0018_keeps_earning_rule_tiers_by_id_on_sqlite(tmp_path):
    _tier_ids_by_0018(f"sqlite:///{tmp_path / 'rule_tiers.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_0018_keeps_earning_rule_tiers_by_id_on_postgresql(pg_template):
    _tier_ids_by_0018(clone_pg(pg_template, "rule_tiers"), at_head=True)


def _rules_rebuilt_by_custom_actions(url, *, at_head: bool):
    """The custom actions revision rebuilds `earning_rules` on SQLite: a rule's tiers and the
    table's config triggers survive it, up and down; going down drops action rules."""
    app = make_app(url)
    with app.app_context():
        mine = next(
            r for r in script_directory(app).walk_revisions() if r.doc.startswith("Custom actions")
        )
        before = mine.down_revision
        (downgrade if at_head else upgrade)(revision=before)
        t = "2026-01-01 00:00:00+00:00"
        with db.engine.begin() as conn:
            tier = conn.execute(text("SELECT id FROM tiers ORDER BY id LIMIT 1")).scalar()
            conn.execute(text(
                "INSERT INTO earning_rules (name, \"trigger\", points, conditions, active,"
                " created_at, updated_at) VALUES ('Welcome', 'signup', 100, '{}', true, :t, :t)"
            ), {"t": t})  # fmt: skip
            rule = conn.execute(text("SELECT id FROM earning_rules")).scalar()
            conn.execute(text(
                "INSERT INTO earning_rule_tiers (rule_id, tier_id, position) VALUES (:r, :t, 0)"
            ), {"r": rule, "t": tier})  # fmt: skip
        upgrade(revision=mine.revision)

        def links():
            with db.engine.connect() as conn:
                return conn.execute(text("SELECT rule_id, tier_id FROM earning_rule_tiers")).all()

        def stamp():
            with db.engine.connect() as conn:
                return conn.execute(text("SELECT version FROM config_version")).scalar()

        assert links() == [(rule, tier)]
        was = stamp()
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO earning_rules (name, \"trigger\", points, conditions, caps, active,"
                " created_at, updated_at) VALUES ('Reviews', 'action', 50,"
                " '{\"action_type\": \"review\"}', '{\"per_month\": 3}', true, :t, :t)"
            ), {"t": t})  # fmt: skip
        assert stamp() != was  # the config trigger is there
        downgrade(revision=before)
        assert links() == [(rule, tier)]
        with db.engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM earning_rules")).scalars().all()
        assert names == ["Welcome"]
        upgrade()
        db.engine.dispose()


def test_custom_actions_keep_rule_tiers_and_triggers_on_sqlite(tmp_path):
    _rules_rebuilt_by_custom_actions(f"sqlite:///{tmp_path / 'rules.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_custom_actions_keep_rule_tiers_and_triggers_on_postgresql(pg_template):
    _rules_rebuilt_by_custom_actions(clone_pg(pg_template, "rules"), at_head=True)


def _rules_rebuilt_by_win_back(url, *, at_head: bool):
    """The win-back revision rebuilds `earning_rules` on SQLite: a rule's tiers, an action
    rule's award counts and the table's config triggers survive it, up and down; going down
    drops lapse rules."""
    app = make_app(url)
    with app.app_context():
        mine = next(r for r in script_directory(app).walk_revisions()
                    if r.doc.startswith("Win-back"))  # fmt: skip
        before = mine.down_revision
        (downgrade if at_head else upgrade)(revision=before)
        t = "2026-01-01 00:00:00+00:00"
        with db.engine.begin() as conn:
            tier = conn.execute(text("SELECT id FROM tiers ORDER BY id LIMIT 1")).scalar()
            conn.execute(text(
                "INSERT INTO earning_rules (name, \"trigger\", points, conditions, active,"
                " created_at, updated_at) VALUES ('Reviews', 'action', 50,"
                " '{\"action_type\": \"review\"}', true, :t, :t)"
            ), {"t": t})  # fmt: skip
            rule = conn.execute(text("SELECT id FROM earning_rules")).scalar()
            conn.execute(text(
                "INSERT INTO earning_rule_tiers (rule_id, tier_id, position) VALUES (:r, :t, 0)"
            ), {"r": rule, "t": tier})  # fmt: skip
            conn.execute(text(
                "INSERT INTO members (customer_id, enrolled_at, points_available, points_pending,"
                " points_lifetime, referral_check) VALUES ('c_1', :t, 0, 0, 0, false)"
            ), {"t": t})  # fmt: skip
            member = conn.execute(text("SELECT id FROM members")).scalar()
            conn.execute(text(
                "INSERT INTO action_award_counts (member_id, rule_id, period, awards)"
                " VALUES (:m, :r, 'lifetime', 2)"
            ), {"m": member, "r": rule})  # fmt: skip
        upgrade(revision=mine.revision)

        def kept():
            with db.engine.connect() as conn:
                links = conn.execute(text("SELECT rule_id, tier_id FROM earning_rule_tiers"))
                counts = conn.execute(text("SELECT rule_id, awards FROM action_award_counts"))
                return links.all(), counts.all()

        def stamp():
            with db.engine.connect() as conn:
                return conn.execute(text("SELECT version FROM config_version")).scalar()

        assert kept() == ([(rule, tier)], [(rule, 2)])
        was = stamp()
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO earning_rules (name, \"trigger\", points, conditions, active,"
                " created_at, updated_at) VALUES ('Come back', 'lapse', 200, '{\"days\": 90}',"
                " true, :t, :t)"
            ), {"t": t})  # fmt: skip
        assert stamp() != was  # the config trigger is there
        downgrade(revision=before)
        assert kept() == ([(rule, tier)], [(rule, 2)])
        with db.engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM earning_rules")).scalars().all()
        assert names == ["Reviews"]
        upgrade()
        db.engine.dispose()


def test_win_back_keeps_rule_tiers_award_counts_and_triggers_on_sqlite(tmp_path):
    _rules_rebuilt_by_win_back(f"sqlite:///{tmp_path / 'lapse.sqlite3'}", at_head=False)


@pytest.mark.postgres
def test_win_back_keeps_rule_tiers_award_counts_and_triggers_on_postgresql(pg_template):
    _rules_rebuilt_by_win_back(clone_pg(pg_template, "lapse"), at_head=True)
