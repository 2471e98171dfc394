"""Order events many at a time: `POST /v1/events/batch` and the connectors' history import.

`apply_events` takes a list of events as they were sent and answers each one as
`POST /v1/events` would have — its status and its body (the event's answer, or its
problem+json) — in the order given, all in the caller's one transaction. Each event goes
through the same validation and the same order handlers as the single endpoint, so every rule
(points, bonus rules, tiers, pending points, caps, referrals, reward codes, gift card holds,
refunds) has one copy; what the batch saves is statements:

- the events are validated first, each alone (`schemas.load_event`: what `EventSchema`
  gives, the common shape by a fast path): an invalid one is answered 422 and skipped;
- the events already processed are found in one query, and those sent again with the same
  body answered with their stored answer (marked `duplicate`), as the single endpoint does;
- the customers whose first event in the batch is an `order.paid` in the program's currency
  and who are not members yet are enrolled in one INSERT (`members.enroll_many`) when the
  program enrols automatically, as each event would enrol them on its way;
- the plain `order.paid` events of members (`_groupable`) are applied in groups, in waves
  (`_waves`): no two events of a wave share a customer, order, mailbox or event id, and an
  event comes after every earlier event it shares one with. A group is taken in together
  (`intake.paid_orders`), each handler runs on all of its events (`Hooks.dispatch_many`:
  a handler's `paid_many`, its statements sent together), and its orders and answers are
  written together at its end (`intake.place_orders`). Any other event runs alone, in its
  place;
- no savepoint per event (a savepoint costs two round trips). If any event is refused,
  everything the batch did is rolled back to where it started, and the events run again each
  under a savepoint of its own, so that only the refused ones are undone, with their answer.

An event refused is answered with the status and problem+json the single endpoint gives; the
others stand. Events of one customer or order are applied in order: an event may depend on one
before it (an order paid, then refunded). Should an event of a group convert a referral (its
referrer could be another member of the group), the batch runs again with each event applied
alone. `EVENT_BATCH_FAST_PATH=false` (configuration) turns all of this off: every event then
runs alone under its savepoint from the start (docs/performance.md, "Order events in batches").
The batch runs with Python's garbage collector paused (`collector_paused`).
"""

import gc
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from loyalty import fastsql
from loyalty.errors import DomainError
from loyalty.fastsql import FastStatement
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders import intake, service
from loyalty.orders.models import ProcessedEvent
from loyalty.orders.schemas import load_event
from loyalty.program.service import ProgramSettings, program_settings

MAX_EVENTS = 500


@dataclass
class Outcome:
    """One event's answer: `status` as `POST /v1/events` gives it, and `body` — the answer's
    JSON text (200), or the problem+json object of a refusal. `error` is the refusal itself
    (a `DomainError` or a marshmallow `ValidationError`), for callers that count reasons."""

    event_id: str | None
    status: int
    body: str | dict
    error: Exception | None = None

    @property
    def duplicate(self) -> bool:
        # An answer's keys are sorted (`service.encode_answer`): `duplicate` comes first.
        return isinstance(self.body, str) and self.body.startswith('{"duplicate":true')

    def as_json(self) -> str:
        """The outcome as an item of the batch's `results` (JSON text)."""
        body = self.body if isinstance(self.body, str) else json.dumps(self.body, default=str)
        return f'{{"body":{body},"id":{json.dumps(self.event_id)},"status":{self.status}}}'


def invalid(exc: ValidationError) -> dict:
    """The problem+json `POST /v1/events` answers for a body its schema refuses."""
    return {
        "type": "validation-error",
        "title": "The request is not valid",
        "status": 422,
        "detail": "See `errors` for each invalid field.",
        "errors": exc.messages,
    }


def refused(exc: DomainError) -> dict:
    """The problem+json of a refusal, as `loyalty.errors.domain_error_response` builds it."""
    body = {"type": exc.type, "title": exc.title, "status": exc.status, "detail": exc.detail}
    if exc.errors is not None:
        body["errors"] = exc.errors
    body.update({k: v for k, v in exc.extra.items() if v is not None})
    return body


def event_id_of(event: object) -> str | None:
    """The id an event was sent with, when it has one that is a string."""
    found = event.get("id") if isinstance(event, dict) else None
    return found if isinstance(found, str) else None


def apply_events(
    session: Session,
    hooks: Hooks,
    events: Sequence[object],
    *,
    first_version_stands: bool = False,
    digests: Sequence[str] | None = None,
) -> list[Outcome]:
    """Each event applied (or replayed, or refused) as `POST /v1/events` would: one `Outcome`
    per event, in order. Nothing is committed: the caller's transaction holds the batch.

    `first_version_stands`: an event processed before with another body is a duplicate (its
    stored answer again) instead of a conflict — how the platforms' webhooks take an order
    edited after it was paid. `digests`: the events' body hashes, when the caller has them.

    A `StaleConfig` or a database error (a deadlock's victim) ends the batch: the caller's
    transaction is then to be rolled back, and the batch may run again as a whole."""
    with collector_paused():
        return _apply_events(session, hooks, events, first_version_stands, digests)


def _apply_events(
    session: Session,
    hooks: Hooks,
    events: Sequence[object],
    first_version_stands: bool,
    digests: Sequence[str] | None,
) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(events)
    todo: list[tuple[int, dict, str]] = []
    for position, event in enumerate(events):
        try:
            data = load_event(event)
        except ValidationError as exc:
            outcomes[position] = Outcome(event_id_of(event), 422, invalid(exc), exc)
            continue
        digest = digests[position] if digests is not None else service.body_hash(event)
        todo.append((position, data, digest))
    todo = _answer_replays(session, todo, outcomes, first_version_stands)
    fast = _fast_path_enabled()
    if todo and not (fast and _all_at_once(session, hooks, todo, outcomes)):
        _one_by_one(session, hooks, todo, outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


_collector_lock = threading.Lock()
_collector_pauses = 0  # batches running with the collector paused, in all threads
_collector_was_enabled = False
# While batches overlap without a gap (several threads of a worker busy with an import), a
# batch that ends collects anyway if none has for this long: the cyclic garbage of the
# requests beside them stays bounded.
COLLECT_EVERY_SECONDS = 5.0
_clock = time.monotonic
_collected_at = 0.0


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the block runs (`EVENT_BATCH_GC_PAUSE`).

    A batch allocates hundreds of thousands of objects that live until it ends (rows, ORM
    instances, answers), so the collector would run hundreds of times during it, walking
    them each time, and now and then walk everything the process holds (a full collection:
    the app, its schemas and mappers, when they are not frozen) — about a fifth of the import
    engine's time, 4 % of a batch request's. Nothing it could free is freed any later than
    the batch's end. Reentrant and thread-safe: the collector is back on once the last batch
    of the process ends, if it was on when the first began; while batches overlap with no
    gap, one that ends collects if none has for `COLLECT_EVERY_SECONDS`."""
    global _collector_pauses, _collector_was_enabled, _collected_at
    if has_app_context() and not current_app.config.get("EVENT_BATCH_GC_PAUSE", True):
        yield
        return
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            _collected_at = _clock()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0:
                if _collector_was_enabled:
                    gc.enable()
            elif _collector_was_enabled and _clock() - _collected_at >= COLLECT_EVERY_SECONDS:
                _collected_at = _clock()
                gc.collect()  # other batches still running: collect now, not never


def _fast_path_enabled() -> bool:
    return not has_app_context() or bool(current_app.config.get("EVENT_BATCH_FAST_PATH", True))


def _answer_replays(
    session: Session, todo: list, outcomes: list, first_version_stands: bool
) -> list:
    """The events processed before this batch, found in one query: those sent again with the
    same body (any body, when `first_version_stands`) get their stored answer, as a duplicate;
    the others are left to the event path (which refuses another body)."""
    ids = {data["id"] for _position, data, _digest in todo}
    if not ids:
        return todo
    processed = {row.event_id: row for row in _where_any(session, _PROCESSED, "event_id", ids)}
    if not processed:
        return todo
    left = []
    for item in todo:
        position, data, digest = item
        row = processed.get(data["id"])
        if (
            row is None
            or row.response is None
            or not (row.body_hash == digest or first_version_stands)
        ):
            left.append(item)
            continue
        answer = service.encode_answer({**row.response, "duplicate": True})
        outcomes[position] = Outcome(data["id"], 200, answer)
    return left


def _enroll_first_buyers(
    session: Session, hooks: Hooks, todo: list
) -> tuple[set[str], list[Member]]:
    """Enrol at once the customers whom the batch's events would each enrol on the way: those
    whose first event in the batch is an `order.paid` in the program's currency and who are not
    members — enrolled as that event would (auto-enrolment, with its email, name and time).
    The batch's customers who are members now, and the members enrolled here."""
    program = program_settings(session)
    first: dict[str, dict] = {}
    for _position, data, _digest in todo:
        first.setdefault(data["order"]["customer_id"], data)
    known: set[str] = {
        row.customer_id
        for row in _where_any(session, _MEMBERS, "customer_id", first)
        if row.customer_id is not None
    }
    if not program.auto_enroll:
        return known, []
    people = [
        {"customer_id": customer, "email": data["order"].get("email"),
         "name": data["order"].get("name"), "enrolled_at": data["occurred_at"]}
        for customer, data in first.items()
        if customer not in known and data["type"] == "order.paid"
        and data["order"]["currency"] == program.currency
    ]  # fmt: skip
    enrolled = members.enroll_many(session, hooks, people) if people else []
    return known | {person["customer_id"] for person in people}, enrolled


_PROCESSED = select(ProcessedEvent.event_id, ProcessedEvent.body_hash, ProcessedEvent.response)
_MEMBERS = select(Member.customer_id)
_ANY: dict[tuple[int, str], FastStatement] = {}


def _where_any(session: Session, query: Select, column: str, values: Iterable[str]) -> list:
    """The rows of `query` whose `column` (of its one table) is one of `values`: on
    PostgreSQL the values as one array parameter, the statement prepared once
    (`FastStatement`), where an IN would be rendered anew with a parameter per value."""
    connection, values = session.connection(), list(values)
    table = query.get_final_froms()[0]
    if not fastsql.on(connection):
        return list(session.execute(query.where(table.c[column].in_(values))))
    key = (id(query), column)
    found = _ANY.get(key)
    if found is None:
        wanted = bindparam("values", type_=postgresql.ARRAY(String))
        found = _ANY[key] = FastStatement(query.where(table.c[column] == any_(wanted)))
    return found.all(connection, {"values": values})


class _ReachedAnother(Exception):
    """An event of a group (`_apply_group`) converted a referral: its referrer's row changed,
    and the referrer could be another member of the group, whose answer is read at the
    group's end."""


def _all_at_once(session: Session, hooks: Hooks, todo: list, outcomes: list) -> bool:
    """The events without a savepoint each, under one for the batch: True when none was
    refused; False (the batch's work undone) when one was, for `_one_by_one` to run them.

    The `order.paid` events that can be are applied in groups (`_apply_all`). Should an event
    of a group convert a referral, the batch runs again with every event applied alone."""
    for grouped in (True, False):
        savepoint = session.begin_nested()
        try:
            # The members enrolled stay held (the session's identity map holds its rows
            # weakly) until the batch has applied its events: their orders find them there.
            known, _enrolled = _enroll_first_buyers(session, hooks, todo)
            answers = _apply_all(session, hooks, todo, known if grouped else None)
        except _ReachedAnother:
            savepoint.rollback()
            continue
        except (DomainError, IntegrityError):
            # IntegrityError: a customer enrolled meanwhile by a concurrent transaction.
            savepoint.rollback()
            return False
        except BaseException:
            if savepoint.is_active:
                savepoint.rollback()
            raise
        savepoint.commit()
        for (position, data, _digest), answer in zip(todo, answers, strict=True):
            outcomes[position] = Outcome(data["id"], 200, answer)
        return True
    raise AssertionError("unreachable: the second run applies each event alone")


def _groupable(data: dict, program: ProgramSettings, members_now: set[str]) -> bool:
    """Can this event join a group: an `order.paid` in the program's currency of a customer
    who is a member, with no reward code, gift card hold or referral code (what the plain
    order of a member earns, counts and converts is all a group does at once)?"""
    order = data["order"]
    return (
        data["type"] == "order.paid"
        and order["currency"] == program.currency
        and order["customer_id"] in members_now
        and not order.get("reward_codes")
        and not order.get("gift_card_holds")
        and not order.get("referral_code")
    )


def _apply_all(
    session: Session, hooks: Hooks, todo: list, members_now: set[str] | None
) -> list[str]:
    """Each event applied in order; the answers (JSON text), in the order of `todo`.

    With `members_now` (the batch's customers who are members), each run of consecutive
    groupable events (`_groupable`) is applied in waves (`_waves`), each wave a group
    (`_apply_group`); an event that cannot join a group runs alone, after the run before it
    and before the run after it."""
    program = program_settings(session)
    answers: list[str | None] = [None] * len(todo)
    run: list[tuple[int, dict, str]] = []
    for index, (_position, data, digest) in enumerate(todo):
        if members_now is not None and _groupable(data, program, members_now):
            run.append((index, data, digest))
            continue
        _apply_run(session, hooks, program, run, answers)
        run = []
        answers[index] = _apply_one(session, hooks, data, digest)
    _apply_run(session, hooks, program, run, answers)
    return [answer for answer in answers if answer is not None]


def _apply_run(
    session: Session,
    hooks: Hooks,
    program: ProgramSettings,
    run: list[tuple[int, dict, str]],
    answers: list[str | None],
) -> None:
    """A run of groupable events, wave after wave (`_waves`), each wave a group; the answers
    into `answers` at each event's index."""
    for wave in _waves(run):
        found = _apply_group(session, hooks, program, [(data, digest) for _i, data, digest in wave])
        for (index, _data, _digest), answer in zip(wave, found, strict=True):
            answers[index] = answer


def _waves(run: list[tuple[int, dict, str]]) -> list[list[tuple[int, dict, str]]]:
    """The run's events in waves: each event in the wave after the last one holding an event
    that names a customer, order, mailbox or event id it names (`_names`), the first wave if
    none does. An event thus comes after every earlier event it shares anything with, and no
    two events of a wave share anything: no event of a wave can see another's changes, so
    applying a wave together, and the waves in order, leaves what applying the events one
    after another leaves."""
    waves: list[list[tuple[int, dict, str]]] = []
    last: dict[tuple[str, str], int] = {}
    for item in run:
        names = _names(item[1])
        wave = max((last.get(name, -1) for name in names), default=-1) + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(item)
        for name in names:
            last[name] = wave
    return waves


def _names(data: dict) -> set[tuple[str, str]]:
    """What an event names that another event of its group must not."""
    order = data["order"]
    found = {("event", data["id"]), ("order", order["id"]), ("customer", order["customer_id"])}
    email = members.normalize_email(order.get("email"))
    if email is not None:
        found.add(("email", email))
    return found


def _apply_one(session: Session, hooks: Hooks, data: dict, digest: str) -> str:
    """One event applied alone, as `POST /v1/events` applies it: its answer."""
    applied = service.apply_event(session, hooks, data, digest)
    if isinstance(applied, str):  # applied before: its stored answer
        return applied
    view = members.member_view(session, hooks, applied.member) if applied.member else None
    answer = service.event_answer(applied, view)
    intake.store_answer(session, data["id"], answer, applied.order, applied.order_changes())
    return answer


def _apply_group(
    session: Session, hooks: Hooks, program: ProgramSettings, group: list[tuple[dict, str]]
) -> list[str]:
    """A group of `order.paid` events (`_apply_all`) applied together: taken in together on
    PostgreSQL (`intake.paid_orders`: one claim, one member lock, the orders' ids drawn), each
    handler on all of them at once (`service.apply_paid_group`), their members' views read in
    one SELECT, the orders and answers written together (`intake.place_orders`). Their
    answers, in order."""
    if len(group) == 1:
        return [_apply_one(session, hooks, *group[0])]
    rows = [(data, digest, service.order_row(data)) for data, digest in group]
    started = intake.paid_orders(session, program, rows)
    answers: list[str | None] = [None] * len(group)
    items, places = [], []
    for place, (data, digest, row) in enumerate(rows):
        found = started.get(data["id"])
        if found is None:  # taken in one by one (SQLite), or claimed before: a replay
            taken = intake.paid_order(session, hooks, program, data, digest, row)
            if isinstance(taken, intake.Replay):
                answers[place] = service.encode_answer(taken.answer)
                continue
            found = taken
        items.append((data, found))
        places.append(place)
    ctxs = service.apply_paid_group(session, hooks, items)
    if any(effect.get("kind") == "referral" for ctx in ctxs for effect in ctx.effects):
        raise _ReachedAnother
    views = members.member_views(
        session, hooks, [ctx.member.id for ctx in ctxs if ctx.member is not None]
    )
    stored, placed = [], []
    for place, ctx in zip(places, ctxs, strict=True):
        answer = service.event_answer(ctx, views[ctx.member.id] if ctx.member else None)
        if ctx.event_id in started:  # its order not inserted yet
            placed.append((ctx.event_id, answer, ctx.order))
        else:
            stored.append((ctx.event_id, answer, ctx.order, ctx.order_changes()))
        answers[place] = answer
    intake.place_orders(session, placed)
    intake.store_answers(session, stored)
    return [answer for answer in answers if answer is not None]


def _one_by_one(session: Session, hooks: Hooks, todo: list, outcomes: list) -> None:
    """Each event under a savepoint of its own: a refused one is undone alone and answered
    with its problem."""
    for position, data, digest in todo:
        try:
            with session.begin_nested():
                answer = service.answer_event(session, hooks, data, digest)
        except DomainError as exc:
            outcomes[position] = Outcome(data["id"], exc.status, refused(exc), exc)
        else:
            outcomes[position] = Outcome(data["id"], 200, answer)
