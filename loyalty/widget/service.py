"""The shopper's widget: short-lived member tokens, what `/v1/me` shows, and who may embed it.

The storefront's server mints a token for one of its customers (API key needed); the browser
holds only that token. Everything a token reaches is the token's own member: there is no id to
change in any `/v1/me` path or body that could point at someone else.
"""

import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty.auth import (
    Principal,
    issue_widget_token,
    widget_member_conditions,
    widget_member_gone,
)
from loyalty.errors import NotFound
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.program.models import PROGRAM_ID, Program
from loyalty.program.service import program_settings


def mint_token(session: Session, customer_id: str) -> dict:
    """A widget token for an enrolled, not erased member; unknown customers are a 404."""
    member = members.get_member(session, customer_id)
    # itsdangerous stamps whole seconds at or after `issued`: the token lives at least this long.
    issued = int(time.time())
    token = issue_widget_token(member.id, customer_id)
    expires_at = datetime.fromtimestamp(issued + current_app.config["WIDGET_TOKEN_MAX_AGE"], UTC)
    return {"token": token, "expires_at": expires_at}


TOKEN_MEMBER_VIEW = members.ViewQuery(
    lambda: widget_member_conditions(bindparam("member_id"), bindparam("customer_id")),
    extra=lambda: [
        select(Program.currency).where(Program.id == PROGRAM_ID).scalar_subquery().label("currency")
    ],
)


def me(session: Session, hooks: Hooks, principal: Principal) -> dict:
    """The token's member's view, plus what a browser needs to format it (the program's
    currency) — and the check that the member is still the token's, all in one statement."""
    found = TOKEN_MEMBER_VIEW.find(
        session, hooks, member_id=principal.member_id, customer_id=principal.customer_id
    )
    if found is None:
        raise widget_member_gone()
    view, row = found
    view["currency"] = row.currency
    return view


def rewards(session: Session, hooks: Hooks, member: Member) -> dict:
    if hooks.member_rewards is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return {"items": hooks.member_rewards(session, member)}


def redeem(session: Session, hooks: Hooks, member: Member, reward_id: int) -> dict:
    if hooks.redeem_reward is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.redeem_reward(session, member, reward_id)


def redemption(session: Session, hooks: Hooks, member: Member, redemption_id: int) -> dict:
    if hooks.member_redemption is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.member_redemption(session, member, redemption_id)


def redemptions(
    session: Session, hooks: Hooks, member: Member, limit: int, cursor: str | None
) -> dict:
    if hooks.member_redemptions is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.member_redemptions(session, member, limit, cursor)


def cancel_redemption(session: Session, hooks: Hooks, member: Member, redemption_id: int) -> dict:
    if hooks.cancel_member_redemption is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.cancel_member_redemption(session, member, redemption_id)


def gift_card_balance(session: Session, hooks: Hooks, code: str, address: str) -> dict:
    """A gift card's balance by code, counted against the shopper's `address` (the browser's
    own: the widget's requests come straight from it)."""
    if hooks.gift_card_balance is None:
        raise NotFound("Gift cards are not enabled in this installation.")
    return hooks.gift_card_balance(session, code, address)


def checkout_quote(session: Session, hooks: Hooks, member: Member, cart_subtotal: int) -> dict:
    if hooks.checkout_quote is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.checkout_quote(session, member, cart_subtotal)


def checkout_discount(
    session: Session, hooks: Hooks, member: Member, points: int, cart_subtotal: int
) -> dict:
    if hooks.checkout_discount is None:
        raise NotFound("Rewards are not enabled in this installation.")
    return hooks.checkout_discount(session, member, points, cart_subtotal)


def referrals(
    session: Session, hooks: Hooks, member: Member, limit: int, cursor: str | None
) -> dict:
    if hooks.member_referrals is None:
        raise NotFound("Referrals are not enabled in this installation.")
    return hooks.member_referrals(session, member, limit, cursor)


def origin_allowed(session: Session, origin: str | None) -> bool:
    """Browsers on these origins may call `/v1/me` (the program's settings: a change reaches
    every worker as soon as the change has answered)."""
    if not origin:
        return False
    allowed = program_settings(session).widget_origins
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed}
