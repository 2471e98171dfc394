"""How the domains join the core: the one module of `loyalty` that imports them, called only
by `create_app`.

Three things run in an order that matters, so they are listed here in that order, each line
saying why it is where it is: the handlers of an order event, the scheduled jobs (`run-due`
and the worker run them top to bottom), and the demo data. Everything else a domain adds
(member view fields, erasure, export, report cohorts, the widget's catalog...) is plugged in by
the domain's own `init_app(app, hooks)`, where the order does not matter.
"""

from flask import Flask

import connectors
import referrals
import rewards.catalog
import rewards.giftcards
from connectors.discounts import sync_store_codes
from console.seed import seed_demo_admin
from loyalty import jobs as core_jobs
from loyalty.actions import service as actions
from loyalty.config import ConfigError
from loyalty.demo_history import seed_demo_history
from loyalty.earning import lapses
from loyalty.earning import rules as earning_rules
from loyalty.earning.service import PointsEarning
from loyalty.email.sending import purge_emails, send_emails
from loyalty.hooks import DemoSeed, Hooks, Job, OrderHandler
from loyalty.reports.ledger_months import compact_ledger_months, verify_ledger_months
from loyalty.segment_awards.service import award_segments
from loyalty.tiers import service as tiers
from loyalty.tiers.demo import seed_demo_tiers
from loyalty.webhooks.delivery import deliver_webhooks, purge_webhooks
from loyalty.widget.seed import seed_demo_shopper
from referrals.demo import seed_demo_referrals
from referrals.service import ReferralConversion, issue_due_reward_codes, seed_demo
from rewards.catalog.demo import seed_demo_redemptions
from rewards.catalog.service import RewardCodeConsumption, expire_codes, seed_demo_rewards
from rewards.giftcards.seed import seed_demo_card
from rewards.giftcards.service import GiftCardHolds, expire_cards, expire_holds

# The flow of an order event: each handler's `paid`, `refunded` or `canceled`, top to bottom.
ORDER_HANDLERS: list[OrderHandler] = [
    PointsEarning(),  # points at the tier held before this event
    tiers.TierQualification(),  # qualifying spend; upgrades apply from the next event
    RewardCodeConsumption(),  # reward codes used on the order, each exactly once
    GiftCardHolds(),  # capture the order's gift card holds; cancellation voids them
    ReferralConversion(),  # the friend's first paid order converts a referral; last
]

# The scheduled jobs, by name, in the order `loyalty jobs run-due` and the worker run them.
JOBS: list[tuple[str, Job]] = [
    ("mature-points", core_jobs.mature_points),  # pending points past their window
    ("expire-points", core_jobs.expire_points),  # after maturing: matured points count
    ("purge-idempotency-keys", core_jobs.purge_idempotency_keys),
    ("purge-rate-limits", core_jobs.purge_rate_limits),
    ("close-period", tiers.close_period),  # tier standing at the period's end
    ("birthdays", earning_rules.award_birthdays),
    ("refresh-reports", core_jobs.refresh_reports),  # before segment awards read them
    ("segment-awards", award_segments),  # what is left of awards to a segment
    ("expire-codes", expire_codes),  # reward codes past their expiry; their stock returns
    ("referral-rewards", issue_due_reward_codes),  # referrers' codes past the return window
    ("expire-holds", expire_holds),
    ("expire-gift-cards", expire_cards),  # after expire-holds: a card expires with none open
    ("sync-store-codes", sync_store_codes),  # codes the jobs above issued or ended
    # Win-back rules' points and member.lapsing (MEMBER_LAPSE_DAYS and each rule's days)
    ("lapsing-members", lapses.lapsing_members),
    ("compact-ledger-months", compact_ledger_months),  # the overview's points per month
    ("purge-webhooks", purge_webhooks),
    ("purge-emails", purge_emails),
    ("deliver-webhooks", deliver_webhooks),  # sends what the jobs before it reported
    ("send-emails", send_emails),  # last: the emails the jobs before it queued
]

# The demo program (`loyalty seed-demo`, first `make run`), in order.
DEMO_SEEDS: list[DemoSeed] = [
    seed_demo_tiers,  # first: the rewards and the shopper refer to the tiers
    seed_demo_rewards,  # the catalog (after the demo tiers)
    seed_demo,  # referral program settings
    seed_demo_card,  # a gift card
    seed_demo_shopper,  # its order sees the demo tiers and rewards
    seed_demo_history,  # two years of orders from members and non-members
    seed_demo_referrals,  # friends who converted, claims held for review
    seed_demo_redemptions,  # points spent on the catalog
    seed_demo_admin,  # last: the console's demo owner, its password printed once
]


def init_app(app: Flask) -> Hooks:
    """The hooks of this app: the lists above, then each domain's own parts."""
    hooks = Hooks(
        order_handlers=list(ORDER_HANDLERS),
        jobs=dict(JOBS),
        demo_seed=list(DEMO_SEEDS),
    )
    app.extensions["loyalty.hooks"] = hooks
    hooks.member_enrolled.append(earning_rules.signup_bonus)  # sign-up points, before the domains'
    hooks.member_erased.append(actions.forget_details)  # what the store sent with their actions
    hooks.member_export["actions"] = actions.export
    hooks.program_updated.append(tiers.reevaluate_basis)  # a new tier basis moves members
    hooks.ledger_checks.append(verify_ledger_months)  # the overview's monthly rollup
    rewards.catalog.init_app(app, hooks)  # erasure, export, cohorts, the widget's catalog
    referrals.init_app(app, hooks)  # share codes, erasure, export, cohorts, the widget's referrals
    rewards.giftcards.init_app(app, hooks)  # currency lock, erasure, export
    connectors.init_app(app, hooks)  # store discount codes for reward codes
    unknown = sorted(set(app.config["JOB_BATCH_SIZES"]) - set(hooks.jobs))
    if unknown:  # a misspelt name would silently leave its job at JOB_BATCH_SIZE
        raise ConfigError(f"JOB_BATCH_SIZES names no job {', '.join(unknown)}; jobs: "
                          + ", ".join(hooks.jobs))  # fmt: skip
    return hooks
