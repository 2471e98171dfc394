"""The reads of the members pages that no API route makes: finding a member by what an admin
types (customer id, mailbox, referral code), the newest-first list, and the audit rows about
one member. Read-only: every change goes through the API's services."""

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from console.models import Admin
from loyalty.audit import AuditLog
from loyalty.codes import normalize_code
from loyalty.lookalikes import normalize_email
from loyalty.members import service
from loyalty.members.models import Member
from loyalty.paging import Page, page_by_id
from loyalty.tiers.models import Tier
from referrals.models import ReferralCode


def find_exact(session: Session, text: str) -> Member | None:
    """The member a customer id or a referral code names exactly (customer ids first)."""
    member = service.find_member(session, text)
    if member is not None:
        return member
    code = normalize_code(text)
    if not code:
        return None
    return session.scalar(
        select(Member)
        .join(ReferralCode, ReferralCode.member_id == Member.id)
        .where(ReferralCode.code == code, Member.erased_at.is_(None))
    )


def _matching(text: str):
    query = (
        select(Member, Tier.name)
        .outerjoin(Tier, Tier.id == Member.tier_id)
        .where(Member.erased_at.is_(None))
    )
    if not text:
        return query
    who = [Member.customer_id == text]
    mailbox = normalize_email(text)  # the one spelling enrolment stores
    if mailbox:
        who.append(Member.email_normalized == mailbox)
    code = normalize_code(text)
    if code:
        who.append(Member.id.in_(select(ReferralCode.member_id).where(ReferralCode.code == code)))
    return query.where(or_(*who))


def search(session: Session, text: str, cursor: str | None, limit: int) -> Page:
    """A page of (member, tier name) rows: the members `text` names (all of them for no text),
    not erased, newest first. A cursor this list never made is refused (`ValidationFailed`)."""
    return page_by_id(
        session, _matching(text), Member.id, limit, cursor, row_id=lambda row: row[0].id
    )


def admin_changes(session: Session, member: Member, code_ids: list[int], limit: int):
    """The audit rows about this member and the given codes of theirs, newest first."""
    about = [(AuditLog.object_type == "member") & (AuditLog.object_id == str(member.id))]
    if code_ids:
        about.append(
            (AuditLog.object_type == "reward_code")
            & AuditLog.object_id.in_([str(i) for i in code_ids])
        )
    query = select(AuditLog).where(or_(*about)).order_by(AuditLog.id.desc()).limit(limit)
    return list(session.scalars(query))


def admin_emails(session: Session, actors) -> dict[str, str]:
    """{"admin:<id>": email} of the console admins among audit actors."""
    ids = {int(a[6:]) for a in actors if a and a.startswith("admin:") and a[6:].isdigit()}
    if not ids:
        return {}
    rows = session.execute(select(Admin.id, Admin.email).where(Admin.id.in_(ids)))
    return {f"admin:{admin_id}": email for admin_id, email in rows}
