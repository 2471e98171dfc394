"""The reward catalog, redemptions and the single-use reward codes honoured at checkout."""

from flask import Flask

from loyalty.hooks import Hooks


def init_app(app: Flask, hooks: Hooks) -> None:
    """Plug the catalog into the core: erasure, export, the `reward` report cohort, the
    widget's catalog, redemptions and points at checkout. (Its order handler, job and demo
    data are in the ordered lists of `loyalty.wiring`.)"""
    from rewards.catalog import reports, service, widget

    hooks.member_erased.append(service.forget_member_codes)
    hooks.member_export["codes"] = service.export_member_codes
    hooks.report_cohorts["reward"] = reports.reward_cohorts
    hooks.report_point_value = reports.point_value  # the overview's points liability
    # widget /v1/me: dumped by the catalog's own schemas
    hooks.member_rewards = widget.member_rewards
    hooks.redeem_reward = widget.redeem
    hooks.member_redemption = widget.member_redemption
    hooks.member_redemptions = widget.member_redemptions
    hooks.cancel_member_redemption = widget.cancel_member_redemption
    hooks.checkout_quote = widget.checkout_quote
    hooks.checkout_discount = widget.checkout_discount
    # tiers' entry rewards: codes of catalog rewards, issued without points
    hooks.tier_reached = service.issue_tier_entry_code
    hooks.reward_name = service.live_reward_name
