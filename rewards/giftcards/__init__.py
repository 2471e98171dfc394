"""Prepaid gift cards: secure codes, two-phase spending, Stripe purchases."""

from flask import Flask

from loyalty.hooks import Hooks


def init_app(app: Flask, hooks: Hooks) -> None:
    """Plug gift cards into the core: the program currency stays while cards hold money;
    erasure and export of purchases; `verify-ledger` checks the cards' balances. (Its order
    handler, jobs and demo card are in the ordered lists of `loyalty.wiring`.)"""
    from rewards.giftcards import purchases, service, widget

    hooks.money_in_currency.append(service.any_cards)
    hooks.ledger_checks.append(service.find_card_drift)
    hooks.member_erased.append(purchases.forget_purchaser)
    hooks.member_export["gift_card_purchases"] = purchases.export_purchases
    hooks.gift_card_balance = widget.gift_card_balance  # the widget's balance check


def blueprints() -> list:
    from rewards.giftcards.routes import blp, holds_blp, webhooks_blp

    return [blp, holds_blp, webhooks_blp]
