"""Reward codes become the store's own discount codes (Shopify, WooCommerce).

Nothing calls a platform inside a request. The transaction that issues a code (a redemption, a
referral reward) writes a `create` task in `platform_code_tasks`; the one that cancels, expires
or uses it writes a `delete` task. A rolled-back redemption leaves no task, and a committed one
cannot lose its task. The `sync-store-codes` job then works the outbox like `deliver-webhooks`: it
claims due tasks in a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL) under a lease,
calls the platform outside any transaction, and records each answer in a second one.

A platform that asks us to slow down (HTTP 429 with Retry-After, GraphQL THROTTLED) gets the
task back no sooner than it said, and that attempt is not counted; a network or server failure
is retried after `STORE_CODES_RETRY_SECONDS × 2^(attempts − 1)` (capped) until
`STORE_CODES_MAX_ATTEMPTS`; a validation error is final. Failed tasks keep the platform's words.
A `delete` waits while its `create` is still being tried; a `create` never tried when its code
ends is simply canceled. Free-product codes have no platform equivalent here and get no task.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    bindparam,
    exists,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from connectors.platform_api import Answer, CodeTerms, StoreCodes
from loyalty import outbox
from loyalty.extensions import Base
from loyalty.program.service import get_program
from loyalty.types import BigId, UTCDateTime, utcnow
from rewards.catalog.models import RewardCode

PENDING, DONE, FAILED, CANCELED = "pending", "done", "failed", "canceled"
CREATE, DELETE = "create", "delete"
MIRRORED_KINDS = ("amount_off", "percent_off", "free_shipping")
# What the API shows of a code's create task.
_SHOWN = {PENDING: "pending", DONE: "created", FAILED: "failed"}


class PlatformCodeTask(Base):
    """One call to make to a store platform for a reward code: create its discount code, or
    delete it. `platform_id` is the platform's own id (Shopify's discount node, WooCommerce's
    coupon id) once created."""

    __tablename__ = "platform_code_tasks"
    __table_args__ = (
        UniqueConstraint("reward_code_id", "platform", "action"),
        CheckConstraint("action IN ('create', 'delete')", name="action"),
        CheckConstraint("status IN ('pending', 'done', 'failed', 'canceled')", name="status"),
        Index(
            "ix_platform_code_tasks_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reward_code_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("reward_codes.id"))
    platform: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    platform_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- which platform -----------------------------------------------------------------------------


def configured_platform(config) -> str | None:
    """The store whose discount codes mirror reward codes: one store at a time, Shopify first."""
    if config["SHOPIFY_SHOP"] and config["SHOPIFY_ADMIN_TOKEN"]:
        return "shopify"
    if config["WOOCOMMERCE_URL"] and config["WOOCOMMERCE_KEY"] and config["WOOCOMMERCE_SECRET"]:
        return "woocommerce"
    return None


def platform_client(config, name: str) -> StoreCodes | None:
    from connectors.shopify_admin import ShopifyAdmin
    from connectors.woocommerce_api import WooCommerceCoupons

    timeout = config["STORE_CODES_TIMEOUT_SECONDS"]
    if name == "shopify" and config["SHOPIFY_SHOP"] and config["SHOPIFY_ADMIN_TOKEN"]:
        return ShopifyAdmin(
            config["SHOPIFY_SHOP"],
            config["SHOPIFY_ADMIN_TOKEN"],
            api_base=config["SHOPIFY_API_BASE"],
            version=config["SHOPIFY_API_VERSION"],
            timeout=timeout,
        )
    if name == "woocommerce" and config["WOOCOMMERCE_URL"] and config["WOOCOMMERCE_KEY"]:
        return WooCommerceCoupons(
            config["WOOCOMMERCE_URL"],
            config["WOOCOMMERCE_KEY"],
            config["WOOCOMMERCE_SECRET"],
            timeout=timeout,
        )
    return None


# --- hooks: in the issuing / ending transaction ---------------------------------------------------


def code_issued(session: Session, code: RewardCode) -> None:
    platform = configured_platform(current_app.config)
    if platform is None or code.kind not in MIRRORED_KINDS:
        return
    now = utcnow()
    session.add(
        PlatformCodeTask(
            reward_code_id=code.id, platform=platform, action=CREATE, status=PENDING,
            attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    session.flush()


def codes_ended(session: Session, code_ids) -> None:
    """Set-based: a create never tried is canceled; a created (or still tried) one gets a
    delete task."""
    now = utcnow()
    create = and_(PlatformCodeTask.action == CREATE, PlatformCodeTask.reward_code_id.in_(code_ids))
    session.execute(
        update(PlatformCodeTask)
        .where(create, PlatformCodeTask.status == PENDING, PlatformCodeTask.attempts == 0)
        .values(status=CANCELED, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    done_or_trying = PlatformCodeTask.status.in_((PENDING, DONE))
    session.execute(
        insert(PlatformCodeTask).from_select(
            [
                "reward_code_id",
                "platform",
                "action",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ],
            select(
                PlatformCodeTask.reward_code_id,
                PlatformCodeTask.platform,
                literal(DELETE),
                literal(PENDING),
                literal(0),
                literal(now, UTCDateTime),
                literal(now, UTCDateTime),
                literal(now, UTCDateTime),
            ).where(create, done_or_trying),
        )  # fmt: skip
    )


def code_platforms(session: Session, code_ids: list[int]) -> dict[int, dict]:
    """`{name, status: pending|created|failed, error?}` per code that has a create task."""
    rows = session.execute(
        select(
            PlatformCodeTask.reward_code_id,
            PlatformCodeTask.platform,
            PlatformCodeTask.status,
            PlatformCodeTask.last_error,
        ).where(
            PlatformCodeTask.reward_code_id.in_(code_ids),
            PlatformCodeTask.action == CREATE,
            PlatformCodeTask.status != CANCELED,
        )
    )
    views = {}
    for code_id, platform, status, error in rows:
        view: dict[str, str | None] = {"name": platform, "status": _SHOWN[status]}
        if status == FAILED:
            view["error"] = error
        views[code_id] = view
    return views


# --- the job --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    batch: int
    timeout: float
    max_attempts: int
    retry_seconds: float
    retry_max_seconds: float

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            config["STORE_CODES_BATCH_SIZE"],
            config["STORE_CODES_TIMEOUT_SECONDS"],
            config["STORE_CODES_MAX_ATTEMPTS"],
            config["STORE_CODES_RETRY_SECONDS"],
            config["STORE_CODES_RETRY_MAX_SECONDS"],
        )

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.retry_seconds * 2 ** (attempts - 1), self.retry_max_seconds)
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.batch * self.timeout + 60)


_Create = aliased(PlatformCodeTask)


def _claim(session: Session, now: datetime, settings: Settings) -> Sequence[Row]:
    still_creating = exists().where(
        _Create.reward_code_id == PlatformCodeTask.reward_code_id,
        _Create.platform == PlatformCodeTask.platform,
        _Create.action == CREATE,
        _Create.status == PENDING,
    )
    due = (
        select(PlatformCodeTask.id)
        .where(
            PlatformCodeTask.status == PENDING,
            PlatformCodeTask.next_attempt_at <= now,
            or_(PlatformCodeTask.action == CREATE, ~still_creating),
        )
        .order_by(PlatformCodeTask.next_attempt_at, PlatformCodeTask.id)
        .limit(settings.batch)
        .with_for_update(of=PlatformCodeTask, skip_locked=True)
    )
    claimed = outbox.claim(session, PlatformCodeTask, due, now=now, lease=settings.lease)
    if not claimed:
        return []
    created = (
        select(_Create.platform_id)
        .where(
            _Create.reward_code_id == PlatformCodeTask.reward_code_id,
            _Create.platform == PlatformCodeTask.platform,
            _Create.action == CREATE,
            _Create.status == DONE,
        )
        .scalar_subquery()
    )
    return session.execute(
        select(PlatformCodeTask.id, PlatformCodeTask.platform, PlatformCodeTask.action,
               PlatformCodeTask.attempts, RewardCode.code, RewardCode.kind, RewardCode.amount,
               RewardCode.percent, RewardCode.min_order, RewardCode.created_at,
               RewardCode.expires_at, created.label("created_id"))
        .join(RewardCode, RewardCode.id == PlatformCodeTask.reward_code_id)
        .where(PlatformCodeTask.id.in_(claimed))
        .order_by(PlatformCodeTask.id)
    ).all()  # fmt: skip


def _terms(row, currency: str) -> CodeTerms:
    return CodeTerms(
        code=row.code, kind=row.kind, amount=row.amount, percent=row.percent,
        min_order=row.min_order, currency=currency, starts_at=row.created_at,
        ends_at=row.expires_at,
    )  # fmt: skip


def _call(row, client: StoreCodes | None, currency: str) -> Answer:
    if client is None:
        return Answer(False, error=f"{row.platform} is no longer configured.")
    if row.action == CREATE:
        return client.create(_terms(row, currency))
    if row.created_id is None:  # never created (failed or canceled): nothing to delete
        return Answer(True)
    return client.delete(row.created_id)


_RECORD = (
    update(PlatformCodeTask.__table__)
    .where(PlatformCodeTask.__table__.c.id == bindparam("task_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_at"),
        last_error=bindparam("error"),
        platform_id=bindparam("platform_id"),
        updated_at=bindparam("now"),
    )
)


def _result(row, answer: Answer, now: datetime, settings: Settings) -> dict:
    result = {"task_id": row.id, "attempts": row.attempts, "error": answer.error, "now": now,
              "platform_id": answer.platform_id, "next_at": now, "status": PENDING}  # fmt: skip
    if answer.ok:
        result.update(status=DONE, error=None)
    elif answer.retry_after is not None:
        # Asked to slow down: not the task's fault, so the attempt is given back.
        # Held to the longest backoff: a date must hold it, and a shop cannot park a code.
        wait = min(answer.retry_after, settings.retry_max_seconds)
        result.update(attempts=row.attempts - 1, next_at=now + timedelta(seconds=wait))
    elif answer.final or row.attempts >= settings.max_attempts:
        result.update(status=FAILED)
    else:
        result.update(next_at=now + settings.backoff(row.attempts))
    return result


def sync_store_codes(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Make every due platform call, `STORE_CODES_BATCH_SIZE` at a time; returns how many
    succeeded. Once a platform asks to slow down, the rest of its batch waits as long."""
    config = current_app.config
    settings = Settings.from_config(config)
    clients: dict[str, StoreCodes | None] = {}
    succeeded = 0
    while True:
        rows = _claim(session, now, settings)
        session.commit()  # the lease is visible to other workers; no lock is held during HTTP
        if not rows:
            return succeeded
        currency = get_program(session).currency
        session.commit()
        results: list[dict] = []
        slowed: dict[str, Answer] = {}
        for row in rows:
            if row.platform in slowed:
                answer = slowed[row.platform]
            else:
                if row.platform not in clients:
                    clients[row.platform] = platform_client(config, row.platform)
                answer = _call(row, clients[row.platform], currency)
                if answer.retry_after is not None:
                    slowed[row.platform] = answer
            results.append(_result(row, answer, now, settings))
            succeeded += answer.ok
        session.execute(_RECORD, results)
        session.commit()
