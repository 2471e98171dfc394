"""The audit log: who changed what and when, filtered, each change shown as a diff.

The same reads as `GET /v1/audit-log` (`loyalty.auditlog.service`), with the console's
words around them: an admin by their email, days in the program's time zone, the object's
page linked when the console has one.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import select

from console import accounts, display
from console.auth import requires
from console.members import queries as member_queries
from loyalty.auditlog import service
from loyalty.errors import ValidationFailed
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.program.service import get_program

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50
TARGET_MAX = 161  # "type:" and an id of up to 128 characters


@dataclass(frozen=True)
class Line:
    """One field of a change: its path in the object, before and after, and whether it
    changed."""

    field: str
    before: str
    after: str
    changed: bool


_ABSENT = object()


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        flat: dict[str, object] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "(value)": value}


def _shown(value: object) -> str:
    if value is _ABSENT:
        return ""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _became_object(name: str, value: object, other: object, other_side: dict) -> bool:
    return (
        value is None and other is _ABSENT and any(key.startswith(name + ".") for key in other_side)
    )


def diff(before: dict | None, after: dict | None) -> list[Line]:
    """Every field of either side, in the order the objects hold them, changed ones marked."""
    old = _flatten(before) if before else {}
    new = _flatten(after) if after else {}
    names = list(old) + [name for name in new if name not in old]
    lines = []
    for name in names:
        was, now = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if _became_object(name, was, now, new) or _became_object(name, now, was, old):
            continue  # "reward": null became "reward.points"...: the inner fields say it
        lines.append(Line(name, _shown(was), _shown(now), was != now))
    return lines


class Filters:
    """The page's filter form (GET): read from the query string, checked, and turned into
    the service's `AuditFilter` (errors by field when something can't be read)."""

    def __init__(self, args, tz):
        self.who = args.get("who", "").strip()[:320]
        self.action = args.get("action", "").strip()[:64]
        self.target = args.get("target", "").strip()[:TARGET_MAX]
        self.from_date = args.get("from", "").strip()[:10]
        self.to_date = args.get("to", "").strip()[:10]
        self.errors: dict[str, str] = {}
        self.tz = tz

    def _day(self, text: str, name: str) -> datetime | None:
        if not text:
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            self.errors[name] = "Enter a date such as 2026-12-01."
            return None
        return datetime.combine(day, time(), self.tz)

    def _actor(self) -> str | None:
        if not self.who:
            return None
        if "@" in self.who:  # an admin's email: their actor name
            admin = accounts.find_by_email(db.session(), self.who)
            if admin is None:
                self.errors["who"] = f"No admin has the email {self.who}."
                return None
            return admin.audit_name
        return self.who[:64]

    def where(self) -> service.AuditFilter:
        target_type = target_id = None
        if self.target:
            target_type, _, rest = self.target.partition(":")
            target_id = rest or None
            if not target_type.replace("_", "").isalnum():
                self.errors["target"] = "A type, or type:id, such as referral:12."
        since = self._day(self.from_date, "from")
        until = self._day(self.to_date, "to")
        if until is not None:
            until += timedelta(days=1)  # the whole of the last day
        if since and until and since >= until:
            self.errors["to"] = "The last day can't be before the first."
        return service.AuditFilter(
            actor=self._actor(),
            action=self.action or None,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
        )

    def query(self, **extra) -> dict:
        """The filters as query string arguments (empty ones left out)."""
        args = {"who": self.who, "action": self.action, "target": self.target,
                "from": self.from_date, "to": self.to_date, **extra}  # fmt: skip
        return {k: v for k, v in args.items() if v}


def _member_ids(rows) -> dict[str, str]:
    """{"<member id>": customer id} of the members the rows are about (erased ones have none)."""
    ids = {int(r.object_id) for r in rows if r.object_type == "member" and r.object_id.isdigit()}
    if not ids:
        return {}
    found = db.session.execute(select(Member.id, Member.customer_id).where(Member.id.in_(ids)))
    return {str(member_id): customer_id for member_id, customer_id in found if customer_id}


def target_url(row, members: dict[str, str]) -> str | None:
    """The console page of the object a row is about, if it has one."""
    if row.object_type == "referral" and row.object_id.isdigit():
        return url_for("console.referrals.show", referral_id=int(row.object_id))
    if row.object_type == "member" and row.object_id in members:
        return url_for("console.members.show", customer_id=members[row.object_id])
    return None


@bp.get("")
@requires("audit.view")
def index():
    program = get_program(db.session())
    tz = display.zone(program.timezone)
    filters = Filters(request.args, tz)
    where = filters.where()
    cursor = request.args.get("cursor") or None
    rows: list = []
    next_cursor = None
    if not filters.errors:
        try:
            page = service.list_entries(db.session(), where, PAGE_SIZE, cursor)
        except ValidationFailed:  # a cursor this list never made
            abort(404)
        rows, next_cursor = page.items, page.next_cursor
    members = _member_ids(rows)
    return render_template(
        "console/audit/index.html",
        filters=filters,
        actions=service.actions(db.session()),
        rows=rows,
        cursor=cursor,
        next_cursor=next_cursor,
        admins=member_queries.admin_emails(db.session(), [r.actor for r in rows]),
        diff=diff,
        target_url=lambda row: target_url(row, members),
        tz=tz,
        display=display,
    ), 422 if filters.errors else 200
