"""Prepaid gift cards: secure codes, two-phase spending, Stripe purchases."""

from loyalty.hooks import Hooks


def init_hooks(hooks: Hooks) -> None:
    from rewards.giftcards import purchases, service
    from rewards.giftcards.seed import seed_demo_card

    hooks.jobs["expire-holds"] = service.expire_holds
    hooks.jobs["expire-gift-cards"] = service.expire_cards  # after expire-holds: needs none open
    hooks.demo_seed.append(seed_demo_card)
    hooks.money_in_currency.append(service.any_cards)
    hooks.member_erased.append(purchases.forget_purchaser)
    hooks.member_export["gift_card_purchases"] = purchases.export_purchases


def blueprints() -> list:
    from rewards.giftcards.routes import blp, holds_blp, webhooks_blp

    return [blp, holds_blp, webhooks_blp]
