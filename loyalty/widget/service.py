"""The shopper's widget: short-lived member tokens, what `/v1/me` shows, and who may embed it.

The storefront's server mints a token for one of its customers (API key needed); the browser
holds only that token. Everything a token reaches is the token's own member: there is no id to
change in any `/v1/me` path or body that could point at someone else.
"""

import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy.orm import Session

from loyalty.auth import issue_widget_token
from loyalty.errors import NotFound
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.program.service import get_program


def mint_token(session: Session, customer_id: str) -> dict:
    """A widget token for an enrolled, not erased member; unknown customers are a 404."""
    member = members.get_member(session, customer_id)
    # itsdangerous stamps whole seconds at or after `issued`: the token lives at least this long.
    issued = int(time.time())
    token = issue_widget_token(member.id, member.customer_id)
    expires_at = datetime.fromtimestamp(issued + current_app.config["WIDGET_TOKEN_MAX_AGE"], UTC)
    return {"token": token, "expires_at": expires_at}


def me(session: Session, hooks: Hooks, member: Member) -> dict:
    """The member view, plus what a browser needs to format it (the program's currency)."""
    view = members.member_view(session, hooks, member)
    view["currency"] = get_program(session).currency
    return view


def rewards(session: Session, hooks: Hooks, member: Member) -> dict:
    if hooks.member_rewards is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return {"items": hooks.member_rewards(session, member)}


def redeem(session: Session, hooks: Hooks, member: Member, reward_id) -> dict:
    if hooks.redeem_reward is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.redeem_reward(session, member, reward_id)


def referrals(session: Session, hooks: Hooks, member: Member, limit: int, cursor) -> dict:
    if hooks.member_referrals is None:
        raise NotFound("Referrals are not enabled in this installation.")
    return hooks.member_referrals(session, member, limit, cursor)


def origin_allowed(session: Session, origin: str | None) -> bool:
    """Browsers on these origins may call `/v1/me` (read per request: admins change it live)."""
    if not origin:
        return False
    return origin.rstrip("/") in {o.rstrip("/") for o in get_program(session).widget_origins or []}
