"""Backfill: a platform's order export (JSON lines, one order as its API returns it) imported
as historical order events.

Each order goes through the platform's mapping (the same one its webhooks use) to our own
events, and each event through the same validation and service as `POST /v1/events`
(`loyalty.orders.service.answer_event`): points, bonus rules, tiers over time, pending points
per `occurred_at`, referrals, reward codes and refunds follow the one copy of each rule, and an
event id already processed is a duplicate that changes nothing — importing a file twice changes
nothing the second time.

Events are applied a batch at a time (`batch_size`, one transaction each) by the engine of
`POST /v1/events/batch` (`loyalty.orders.batch.apply_events`): what makes it faster than the
API is how the rules are run, not a second copy of them — no HTTP, no authentication, no
per-request set-up, the batch's replays found in one query, its new customers enrolled in one
INSERT, the plain paid orders of distinct members applied in groups (each order handler on
all of them at once, its statements sent together), and a savepoint per event only in a
batch where an event is refused (invalid data,
another currency, a refund of an order never paid here), which is then rolled back alone and
counted with its reason while the rest of the batch stands. The file is read line by line and
only one batch is held at a time; a failure of the database itself ends the import, having
committed the batches before it — running it again picks up where it stopped, the committed
events being duplicates.
"""

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.cache import StaleConfig
from loyalty.errors import DomainError
from loyalty.hooks import Hooks
from loyalty.orders import batch
from loyalty.program.service import program_settings
from loyalty.retry import ATTEMPTS, pause, retryable


# (order as the platform returns it, program currency) -> an object with `events` (our events,
# in order) and `skipped_reason` (None, or why the order means nothing here)
class MappedOrder(Protocol):
    """What a platform's mapping makes of one order (each connector's `OrderEvents`)."""

    events: list[dict]
    skipped_reason: str | None


Mapper = Callable[[dict, str], MappedOrder]
Progress = Callable[[int], None]

_QUOTED = re.compile(r"'[^']*'")


@dataclass(frozen=True)
class Mapped:
    """What a mapping gives for one order."""

    events: list[dict]
    skipped_reason: str | None = None


def our_events(event: dict, _currency: str) -> Mapped:
    """The mapping of an export whose lines are our own order events already."""
    return Mapped([event])


@dataclass
class Summary:
    """What an import did. Events are counted one by one; an order the mapping skipped, or
    could not read at all, once (under `skipped` or `refused`), with its reason."""

    orders: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    # reason -> the first event id (or line number) refused or skipped for it
    examples: dict = field(default_factory=dict)

    def note(self, counter: Counter, reason: str, example: str) -> None:
        counter[reason] += 1
        self.examples.setdefault(reason, example)

    def lines(self) -> list[str]:
        return [
            f"orders read: {self.orders}",
            f"events imported: {self.imported}",
            f"duplicates (already imported): {self.duplicates}",
            f"orders skipped: {sum(self.skipped.values())}",
            *self._reasons(self.skipped),
            f"refused: {sum(self.refused.values())}",
            *self._reasons(self.refused),
        ]

    def _reasons(self, counter: Counter) -> list[str]:
        return [f"  {count} × {reason} (first: {self.examples[reason]})"
                for reason, count in counter.most_common()]  # fmt: skip


def refusal_reason(exc: Exception) -> str:
    """A reason to count refusals under: the error's kind and what it says, without the ids
    it names (so one reason gathers every event it refused)."""
    if isinstance(exc, ValidationError):
        return f"invalid: {', '.join(_paths(exc.messages))}"
    if isinstance(exc, DomainError):
        if exc.errors:
            return f"{exc.type}: {', '.join(_paths(exc.errors))}"
        return f"{exc.type}: {_QUOTED.sub('…', exc.detail)}"
    return f"{type(exc).__name__}: {_QUOTED.sub('…', str(exc))}"


def _paths(messages, prefix: str = "") -> list[str]:
    """The fields a marshmallow error names, as dotted paths; list positions left out."""
    if not isinstance(messages, dict):
        return [prefix or "event"]
    found: list[str] = []
    for key, value in messages.items():
        name = prefix if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
        for path in _paths(value, name):
            if path not in found:
                found.append(path)
    return found


def import_lines(
    session: Session,
    hooks: Hooks,
    lines: Iterable[str | bytes],
    mapper: Mapper,
    *,
    batch_size: int,
    progress: Progress | None = None,
    first_version_stands: bool = False,
) -> Summary:
    """Import an export, one JSON order per line; commits once per `batch_size` events.

    `progress` hears the length of each line read (the CLI's bar counts the file's bytes).
    `first_version_stands`: an event already processed with another body (a platform's order
    edited, or a WooCommerce refund dated by its order's last change, since the webhook took
    it) is a duplicate, as the webhooks take it, instead of a conflict.
    """
    summary = Summary()
    currency = program_settings(session).currency
    orders_events = _orders_events(lines, mapper, currency, summary, progress)
    _in_batches(session, hooks, orders_events, summary, batch_size, first_version_stands)
    return summary


def _orders_events(lines, mapper: Mapper, currency: str, summary: Summary, progress):
    """Each readable order's events (one list per order); the rest is counted as it is read."""
    for number, line in enumerate(lines, 1):
        if progress is not None:
            progress(len(line))
        if not line.strip():
            continue
        summary.orders += 1
        try:
            order = json.loads(line)
            if not isinstance(order, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            summary.note(summary.refused, "unreadable: not a JSON object", f"line {number}")
            continue
        example = f"order {order.get('id', f'on line {number}')}"
        try:
            mapped = mapper(order, currency)
        except (DomainError, ValidationError) as exc:
            summary.note(summary.refused, refusal_reason(exc), example)
            continue
        except (KeyError, TypeError, ValueError) as exc:
            # An order missing what its platform always sends: counted, and the import goes on.
            summary.note(summary.refused, f"unreadable order: {refusal_reason(exc)}", example)
            continue
        if mapped.skipped_reason:
            summary.note(summary.skipped, mapped.skipped_reason, example)
            continue
        yield mapped.events


def import_events(
    session: Session, hooks: Hooks, events: Iterable[dict], *, batch_size: int
) -> Summary:
    """Import events already in our own format (what a mapping gives), in batches."""
    summary = Summary()
    _in_batches(session, hooks, ([event] for event in events), summary, batch_size, False)
    return summary


def _in_batches(session, hooks, groups, summary, batch_size: int, first_version_stands: bool):
    """Apply the events a batch at a time; one group's events (an order's) share a batch."""
    batch: list[dict] = []
    for events in groups:
        batch.extend(events)
        if len(batch) >= batch_size:
            _apply_batch(session, hooks, batch, summary, first_version_stands)
            batch = []
    if batch:
        _apply_batch(session, hooks, batch, summary, first_version_stands)


def _apply_batch(
    session: Session,
    hooks: Hooks,
    events: list[dict],
    summary: Summary,
    first_version_stands: bool = False,
) -> None:
    """The events in one transaction, through the batch engine of `POST /v1/events/batch`
    (`loyalty.orders.batch.apply_events`): each applied, replayed or refused as the event
    endpoint would, a refused one undone alone. If the settings change meanwhile, or
    PostgreSQL picks the batch as a deadlock's victim, the batch is rolled back and run again
    whole (its events are idempotent)."""
    for attempt in range(ATTEMPTS):
        try:
            outcomes = batch.apply_events(
                session, hooks, events, first_version_stands=first_version_stands
            )
        except StaleConfig:
            session.rollback()
            continue  # the settings changed meanwhile: apply the batch under the new ones
        except DBAPIError as exc:
            session.rollback()
            if not retryable(exc) or attempt == ATTEMPTS - 1:
                raise
            pause(attempt)
            continue
        break
    else:
        raise StaleConfig
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome.error is not None:
            summary.note(summary.refused, refusal_reason(outcome.error), _example(event))
        elif outcome.duplicate:
            summary.duplicates += 1
        else:
            summary.imported += 1
    session.commit()
    session.expunge_all()  # memory stays one batch deep


def _example(event) -> str:
    return f"event {event.get('id')}" if isinstance(event, dict) else "event"
