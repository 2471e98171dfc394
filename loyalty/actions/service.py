"""Custom actions: a review, a follow, a newsletter sign-up... reported for a member and
rewarded by the live earning rules of its type (`trigger: "action"`), within their caps.

The flow of one action, in the caller's one transaction:

1. The member's row is locked (FOR UPDATE; 404 for no such member: an action never enrols
   anyone). Every action of a member waits here for the one before it to commit, which is what
   makes the caps hold however many arrive at once.
2. The action is claimed by its id (INSERT ... ON CONFLICT DO NOTHING on `member_actions`):
   sent again, it gets the answer stored then with `duplicate: true`; the same id for another
   member, or with another body, is a 409.
3. Each live action rule of its type (active, `starts_at <= occurred_at < ends_at`, the
   member's tier among its tiers if it names any), in id order, gives its fixed points as one
   ledger entry (`bonus`, source `action`/<action id>, the rule's id) — unless the member
   already had `caps.per_day` awards of that rule on the action's calendar day, `per_month` in
   its month, or `lifetime` in all (`capped`). Days and months are the program's time zone's,
   counted by the action's `occurred_at`, so a late delivery counts where it happened.
4. The answer is stored with the action; a `points.earned` webhook reports what it earned.

Award counts are kept per member, rule and period (`action_award_counts`), raised with every
award; the member's lock makes "read the counts, award, raise them" one step.

Awards are fixed points, available at once like sign-up and birthday bonuses: the pending
window exists for orders, which can be refunded; an action cannot. Tier multipliers do not
apply (as for every fixed-points rule). An action is not member activity for inactivity
expiry, which counts from purchases and redemptions.
"""

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from loyalty import ledger, webhooks
from loyalty.actions.models import ActionAwardCount, MemberAction
from loyalty.earning.rules import ACTION_TRIGGER, CAP_PERIODS, Rule, cached_rules
from loyalty.errors import Conflict, NotFound
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders.intake import Replay
from loyalty.orders.service import encode_answer
from loyalty.program.service import program_settings
from loyalty.types import utcnow

ACTION_SOURCE = "action"
LIFETIME = "lifetime"


def record_action(session: Session, customer_id: str, data: dict, digest: str) -> str:
    """Apply the action exactly once; its answer as JSON text (`ActionResultSchema`), the same
    answer (marked `duplicate`) every time it is sent again."""
    program = program_settings(session)
    member = members.find_member(session, customer_id, lock=True)
    if member is None:
        raise NotFound(f"No member {customer_id!r}.")
    action_pk = _claim(session, member, data, digest)
    if isinstance(action_pk, Replay):
        return encode_answer(action_pk.answer)
    periods = _periods(data["occurred_at"], program.timezone)
    effects = []
    earned = 0
    for rule in action_rules(session, data["type"], member, data["occurred_at"]):
        reached = _cap_reached(session, member.id, rule, periods)
        if reached is not None:
            cap, limit = reached
            effects.append(
                {"kind": "capped", "rule_id": rule.id, "rule": rule.name, "cap": cap,
                 "limit": limit}
            )  # fmt: skip
            continue
        entry = _award(session, member, rule, data)
        _count(session, member.id, rule.id, periods)
        earned += entry.points
        effects.append(
            {"kind": "bonus", "rule_id": rule.id, "rule": rule.name, "points": entry.points,
             "state": entry.state, "entry_id": entry.id, "matures_at": None}
        )  # fmt: skip
    if earned:
        webhooks.emit(
            session,
            "points.earned",
            {
                "customer_id": member.customer_id,
                "order_id": None,
                "action_id": data["id"],
                "action_type": data["type"],
                "points": earned,
                "state": ledger.AVAILABLE,
                "matures_at": None,
                "occurred_at": webhooks.iso(data["occurred_at"]),
            },
        )
    answer = encode_answer({"action_id": data["id"], "duplicate": False, "effects": effects})
    session.execute(
        update(MemberAction)
        .where(MemberAction.id == action_pk)
        .values(response=json.loads(answer)),
        execution_options={"synchronize_session": False},
    )
    return answer


def action_rules(session: Session, action_type: str, member: Member, at: datetime) -> list[Rule]:
    """The live action rules of this type the member's tier may earn, in id order."""
    return [
        rule
        for rule in cached_rules(session, (ACTION_TRIGGER,), at)
        if rule.conditions.get("action_type") == action_type
        and rule.points
        and (not rule.tier_ids or member.tier_id in rule.tier_ids)
    ]


def _claim(session: Session, member: Member, data: dict, digest: str) -> int | Replay:
    """The new action's row id, or the answer it got before (a replay, `duplicate: true`)."""
    statement = (
        _insert(session, MemberAction)
        .values(
            action_id=data["id"],
            member_id=member.id,
            type=data["type"],
            occurred_at=data["occurred_at"],
            detail=data.get("detail") or {},
            body_hash=digest,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["action_id"])
        .returning(MemberAction.id)
    )
    action_pk = session.execute(statement).scalar()
    if action_pk is not None:
        return int(action_pk)
    row = session.execute(
        select(MemberAction.member_id, MemberAction.body_hash, MemberAction.response).where(
            MemberAction.action_id == data["id"]
        )
    ).first()
    if row is None or row.response is None:  # never committed without its answer
        raise Conflict(f"Action {data['id']!r} is being processed; retry.")
    if row.member_id != member.id:
        raise Conflict(f"Action {data['id']!r} was already recorded for another member.")
    if row.body_hash != digest:
        raise Conflict(f"Action {data['id']!r} was already received with a different body.")
    return Replay({**row.response, "duplicate": True})


def _insert(session: Session, model: type) -> Any:
    """INSERT for this database, with its ON CONFLICT clauses."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    return (postgresql_insert if postgresql else sqlite_insert)(model)


def _periods(occurred_at: datetime, timezone: str) -> dict[str, str]:
    """The cap periods the action falls in: its day and month in the program's time zone."""
    local = occurred_at.astimezone(ZoneInfo(timezone))
    return {
        "per_day": local.strftime("%Y-%m-%d"),
        "per_month": local.strftime("%Y-%m"),
        "lifetime": LIFETIME,
    }


def _cap_reached(
    session: Session, member_id: int, rule: Rule, periods: dict[str, str]
) -> tuple[str, int] | None:
    """The first of the rule's caps the member has reached in these periods, with its limit;
    None when the rule may award (it has no cap, or none is reached)."""
    caps = rule.caps or {}
    if not caps:
        return None
    counts = dict(
        session.execute(
            select(ActionAwardCount.period, ActionAwardCount.awards).where(
                ActionAwardCount.member_id == member_id,
                ActionAwardCount.rule_id == rule.id,
                ActionAwardCount.period.in_(list(periods.values())),
            )
        ).all()
    )
    for cap in CAP_PERIODS:
        limit = caps.get(cap)
        if limit is not None and counts.get(periods[cap], 0) >= limit:
            return cap, limit
    return None


def _count(session: Session, member_id: int, rule_id: int, periods: dict[str, str]) -> None:
    """One more award of the rule for the member in each of its periods."""
    statement = _insert(session, ActionAwardCount).values(
        [{"member_id": member_id, "rule_id": rule_id, "period": period, "awards": 1}
         for period in periods.values()]
    )  # fmt: skip
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["member_id", "rule_id", "period"],
            set_={"awards": ActionAwardCount.awards + 1},
        )
    )


def _award(session: Session, member: Member, rule: Rule, data: dict) -> ledger.LedgerEntry:
    assert rule.points is not None  # action rules give fixed points (checked on write)
    return ledger.post_entry(
        session,
        member.id,
        "bonus",
        rule.points,
        source_type=ACTION_SOURCE,
        source_id=data["id"],
        detail={
            "rule": rule.name,
            "trigger": ACTION_TRIGGER,
            "action_type": data["type"],
            "fixed_points": rule.points,
        },
        rule_id=rule.id,
        occurred_at=data["occurred_at"],
    )


# --- erasure and export (plugged in by loyalty.wiring) ---------------------------------------


def forget_details(session: Session, member: Member) -> None:
    """`hooks.member_erased`: what the store sent with the member's actions goes (it may name
    them); the actions themselves stay, as the ledger entries they explain do."""
    session.execute(
        update(MemberAction).where(MemberAction.member_id == member.id).values(detail={}),
        execution_options={"synchronize_session": False},
    )


def export(session: Session, member: Member) -> list[dict]:
    """`hooks.member_export["actions"]`: the member's actions, oldest first."""
    rows = session.scalars(
        select(MemberAction).where(MemberAction.member_id == member.id).order_by(MemberAction.id)
    )
    return [
        {"id": row.action_id, "type": row.type, "occurred_at": row.occurred_at.isoformat(),
         "detail": row.detail or {}}
        for row in rows
    ]  # fmt: skip
