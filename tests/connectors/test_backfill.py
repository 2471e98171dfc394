"""Backfill: an order history imported in batches ends exactly where the same events sent one
by one to `POST /v1/events` end; a second import changes nothing; refused events are counted
with their reasons while the rest import; the export is read one batch at a time."""

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import click
import pytest
from flask.cli import with_appcontext
from sqlalchemy import func, select

from connectors import backfill
from connectors.cli import run_import
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.orders.models import Order, OrderRefund, ProcessedEvent
from loyalty.tiers.models import Tier, TierChange, TierSpend
from tests import factories as f


def at(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def history(p: str) -> list[dict]:
    """Three customers over a year, every id under the prefix `p`: enrolment by first order,
    a tier reached mid-year (earning at its multiplier from the next order), bonus rules,
    refunds by amount and by lines, a cancellation."""
    a, b, c = f"{p}a", f"{p}b", f"{p}c"
    shoes = f.line(sku="SHOE", quantity=2, unit_price=7_500, category="shoes")
    return [
        f.paid(a, f"{p}o1", [f.line(unit_price=20_000)], event_id=f"{p}e1", occurred_at=at(1)),
        f.paid(b, f"{p}o2", [shoes, f.line()], event_id=f"{p}e2", occurred_at=at(1, 15)),
        f.paid(a, f"{p}o3", [f.line(unit_price=30_000)], event_id=f"{p}e3", occurred_at=at(2)),
        f.paid(a, f"{p}o4", [f.line(unit_price=10_000)], event_id=f"{p}e4", occurred_at=at(3)),
        f.refunded(f"{p}o3", a, amount=5_000, refund_id=f"{p}r1", event_id=f"{p}e5",
                   occurred_at=at(4)),
        f.refunded(f"{p}o2", b, lines=[{"sku": "SHOE", "quantity": 1}], refund_id=f"{p}r2",
                   event_id=f"{p}e6", occurred_at=at(5)),
        f.canceled(f"{p}o5", c, event_id=f"{p}e7", occurred_at=at(6)),
        f.paid(c, f"{p}o6", [f.line(unit_price=99_900)], event_id=f"{p}e8", occurred_at=at(7)),
        f.refunded(f"{p}o6", c, amount=99_900, refund_id=f"{p}r3", event_id=f"{p}e9",
                   occurred_at=at(8)),
        f.paid(b, f"{p}o7", [f.line(unit_price=1_234)], event_id=f"{p}e10", occurred_at=at(11)),
    ]  # fmt: skip


def configure(client, admin) -> None:
    for body in (
        {"name": "Gold", "threshold": 35_000, "multiplier": "1.5"},
        {"name": "Platinum", "threshold": 90_000, "multiplier": "2"},
    ):
        assert client.post("/v1/tiers", json=body, headers=admin).status_code == 201
    for rule in (
        {"name": "shoes double", "trigger": "order", "multiplier": "2",
         "conditions": {"categories": ["shoes"]}},
        {"name": "welcome", "trigger": "signup", "points": 50},
        {"name": "first", "trigger": "first_order", "points": 25},
    ):  # fmt: skip
        made = client.post("/v1/earning-rules", json=rule, headers=admin)
        assert made.status_code == 201, made.json


def state(prefix: str) -> dict:
    """Everything the events left for the customers under `prefix`, with the prefix and the
    row ids taken out (so two histories can be compared)."""
    s = db.session
    s.expire_all()
    mine = Member.customer_id.startswith(prefix)
    tier_names = {t.id: t.name for t in s.scalars(select(Tier))}
    members = {m.id: m for m in s.scalars(select(Member).where(mine))}
    out = {
        "members": sorted(
            (m.customer_id, m.email, m.enrolled_at, m.points_available, m.points_pending,
             m.points_lifetime, tier_names.get(m.tier_id), m.last_activity_at)
            for m in members.values()
        ),
        # Each member's entries in order (the import enrols a batch's new customers first, so
        # their sign-up bonuses come before the batch's order entries of others).
        "ledger": sorted((
            (members[e.member_id].customer_id, e.kind, e.points, e.state, e.source_type,
             None if e.source_type == "signup" else e.source_id, e.detail, e.occurred_at,
             e.matures_at)
            for e in s.scalars(select(LedgerEntry).where(LedgerEntry.member_id.in_(members))
                               .order_by(LedgerEntry.id))
        ), key=lambda entry: entry[0]),
        "tier_spend": sorted(
            (members[t.member_id].customer_id, t.starts_at, t.ends_at, t.keeps_until, t.spend)
            for t in s.scalars(select(TierSpend).where(TierSpend.member_id.in_(members)))
        ),
        "tier_changes": [
            (members[t.member_id].customer_id, t.from_tier, t.to_tier, t.direction, t.reason,
             t.source_id, t.qualifying_spend)  # at: when it was applied (now), either way
            for t in s.scalars(select(TierChange).where(TierChange.member_id.in_(members))
                               .order_by(TierChange.id))
        ],
        "orders": sorted(
            (o.order_id, o.customer_id, o.status, o.occurred_at, o.total_amount,
             o.eligible_amount, o.refunded_amount, o.points_awarded, o.points_reversed, o.lines,
             o.detail)
            for o in s.scalars(select(Order).where(Order.order_id.startswith(prefix)))
        ),
        "refunds": sorted(
            (r.refund_id, r.amount, r.points_reversed, r.occurred_at)
            for r in s.scalars(select(OrderRefund).where(OrderRefund.refund_id.startswith(prefix)))
        ),
        "events": sorted(
            (e.event_id, e.type, e.order_id)
            for e in s.scalars(select(ProcessedEvent)
                               .where(ProcessedEvent.event_id.startswith(prefix)))
        ),
    }  # fmt: skip
    text = json.dumps(out, default=str, sort_keys=True)
    return json.loads(text.replace(prefix, "P_"))


def imported(events: list[dict], batch_size: int = 3) -> backfill.Summary:
    return backfill.import_events(db.session, hooks(), events, batch_size=batch_size)


def test_an_imported_history_ends_where_the_same_events_one_by_one_end(client, admin, storefront):
    configure(client, admin)
    for event in history("A_"):
        answer = client.post("/v1/events", json=event, headers=storefront)
        assert answer.status_code == 200, answer.json
    summary = imported(history("B_"))
    assert (summary.imported, summary.duplicates, dict(summary.refused)) == (10, 0, {})
    one_by_one, batched = state("A_"), state("B_")
    assert len(batched["ledger"]) >= 10 and batched["tier_changes"]  # a real history
    assert {m[6] for m in batched["members"]} >= {"Gold"}
    assert batched == one_by_one


def test_importing_the_same_history_again_changes_nothing(client, admin):
    configure(client, admin)
    first = imported(history("C_"))
    assert first.imported == 10
    before = state("C_")
    again = imported(history("C_"), batch_size=4)
    assert (again.imported, again.duplicates, dict(again.refused)) == (0, 10, {})
    assert state("C_") == before
    # An event id sent again with another body is refused, as `POST /v1/events` refuses it.
    changed = history("C_")
    changed[2]["order"]["lines"][0]["unit_price"] += 1
    third = imported(changed, batch_size=4)
    assert (third.imported, third.duplicates) == (0, 9)
    assert dict(third.refused) == {
        "conflict: Event … was already received with a different body.": 1
    }
    assert third.examples[next(iter(third.refused))] == "event C_e3"
    assert state("C_") == before


def test_refused_events_are_counted_with_reasons_and_the_rest_import(client, admin):
    events = history("D_")
    other_currency = f.paid("D_x", "D_ox", event_id="D_bad1", occurred_at=at(2), currency="EUR")
    no_lines = f.paid("D_y", "D_oy", event_id="D_bad2", occurred_at=at(2))
    no_lines["order"].pop("lines")
    negative = f.paid("D_y", "D_oz", [f.line(unit_price=-5)], event_id="D_bad3",
                      occurred_at=at(2))  # fmt: skip
    never_paid = f.refunded("D_none", "D_a", amount=100, event_id="D_bad4", occurred_at=at(3))
    # A new customer's first order, refused: whoever enrols them must enrol no one.
    taken = f.paid("D_w", "D_o1", event_id="D_bad6", occurred_at=at(3))
    too_much = f.refunded("D_o4", "D_a", amount=10_001, event_id="D_bad5", occurred_at=at(4))
    mixed = [*events[:3], other_currency, no_lines, *events[3:6], negative, never_paid,
             too_much, taken, *events[6:]]  # fmt: skip
    summary = imported(mixed, batch_size=4)
    assert summary.imported == 10
    assert dict(summary.refused) == {
        "currency-mismatch: This program runs in USD; got EUR.": 1,
        "invalid: order.lines": 1,
        "invalid: order.lines.unit_price": 1,
        "conflict: Order … has not been paid here (yet); retry later.": 1,
        "validation-error: refund.amount": 1,
        "conflict: Order … was recorded by another event: it is already paid.": 1,
    }
    assert summary.examples["invalid: order.lines"] == "event D_bad2"
    # The refused events left nothing; the rest are exactly the history without them.
    assert (
        db.session.scalar(select(func.count()).where(Member.customer_id.in_(["D_x", "D_y", "D_w"])))
        == 0
    )
    assert state("D_") == (imported(history("G_")), state("G_"))[1]
    assert (
        "  1 × currency-mismatch: This program runs in USD; got EUR. (first: event D_bad1)"
        in summary.lines()
    )


def test_the_export_is_read_one_batch_at_a_time(client):
    events = [f.paid(f"E_c{i % 4}", f"E_o{i}", event_id=f"E_e{i}", occurred_at=at(1 + i // 3))
              for i in range(23)]  # fmt: skip
    behind = []

    def stream():
        for i, event in enumerate(events):
            applied = db.session.scalar(select(func.count()).select_from(ProcessedEvent))
            behind.append(i - applied)  # read but not yet applied
            yield json.dumps(event)

    summary = backfill.import_lines(db.session, hooks(), stream(), our_events, batch_size=5)
    assert summary.imported == 23 and summary.orders == 23
    assert max(behind) == 4  # never more than one batch held


@dataclass
class Mapped:
    events: list
    skipped_reason: str | None = None


def our_events(order: dict, currency: str) -> Mapped:
    """The lines of the file are our own events already; a `guest` one is skipped as a
    platform mapping skips a guest order."""
    if order.get("guest"):
        return Mapped([], "guest order")
    if "broken" in order:
        return Mapped([order["total_price"]])
    return Mapped([order])


@click.command("import-ours")
@click.argument("path")
@click.option("--batch-size", type=int, default=2)
@with_appcontext
def import_ours(path, batch_size):
    sys.exit(run_import(our_events, path, batch_size, "our events"))


def test_the_command_streams_the_file_and_prints_a_summary(app, runner, tmp_path):
    events = history("F_")
    bad = f.paid("F_z", "F_oz", event_id="F_bad", occurred_at=at(2), currency="EUR")
    export = tmp_path / "orders.jsonl"
    export.write_text(
        "\n".join([*map(json.dumps, events[:4]), "", json.dumps({"guest": True}),
                   "not json", json.dumps(bad), '{"broken": 1, "id": 9}',
                   *map(json.dumps, events[4:])]) + "\n"
    )  # fmt: skip
    result = runner.invoke(import_ours, [str(export)])
    assert result.exit_code == 1, result.output  # something was refused
    out = result.stdout
    assert "orders read: 14" in out
    assert "events imported: 10" in out
    assert "orders skipped: 1\n  1 × guest order (first: order on line 6)" in out
    assert "refused: 3" in out
    assert "1 × unreadable order: KeyError: … (first: order 9)" in out
    assert "1 × unreadable: not a JSON object (first: line 7)" in out
    assert "1 × currency-mismatch: This program runs in USD; got EUR. (first: event F_bad)" in out
    assert "our events" in result.stderr  # the progress bar (one line when not on a terminal)

    again = runner.invoke(import_ours, [str(tmp_path / "orders.jsonl")])
    assert (
        "events imported: 0" in again.stdout and "duplicates (already imported): 10" in again.stdout
    )
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(map(json.dumps, events)) + "\n")
    assert runner.invoke(import_ours, [str(clean)]).exit_code == 0  # nothing refused


def test_an_unknown_platform_is_a_usage_error(runner, tmp_path):
    export = tmp_path / "orders.jsonl"
    export.write_text("{}\n")
    result = runner.invoke(args=["connectors", "import", "magento", str(export)])
    assert result.exit_code == 2
    assert "unknown platform 'magento'; one of: shopify, woocommerce" in result.output
    missing = runner.invoke(args=["connectors", "import", "shopify", str(tmp_path / "none")])
    assert missing.exit_code == 2


@pytest.mark.postgres
@pytest.mark.concurrency
def test_two_imports_of_one_history_at_once_apply_each_event_once(pg_app):
    """Two imports of the same file at once (batches of different sizes, so their enrolments
    and claims cross): every event is applied by one of them and a duplicate for the other."""

    def run(batch_size):
        with pg_app.app_context():
            try:
                return imported(history("H_"), batch_size=batch_size)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(run, (3, 4))
    assert first.imported + second.imported == 10
    assert first.duplicates + second.duplicates == 10
    assert not first.refused and not second.refused
    with pg_app.app_context():
        once = state("H_")
        assert len(once["members"]) == 3 and len(once["events"]) == 10
        assert find_drift(db.session) == []
        # The same as one import of the same history alone.
        assert once == (imported(history("I_")), state("I_"))[1]
