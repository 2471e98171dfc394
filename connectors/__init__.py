"""Store connectors: Shopify and WooCommerce orders in, reward codes out as store discount codes.

Inbound, each platform's signed webhooks become the same order events and enrolments as
`POST /v1/events` and `POST /v1/members` (`connectors.intake`); outbound, reward codes are
created on the platform from an outbox after the redeeming transaction commits. One module per
platform holds what is that platform's: its signature, topics and field mapping. An export of
a platform's past orders goes through the same mapping and service (`connectors.backfill`,
`flask --app wsgi connectors import`).
"""

from flask import Flask

from loyalty.hooks import Hooks


def blueprints() -> list:
    from connectors import shopify, woocommerce  # noqa: F401 - their views join the blueprint
    from connectors.intake import blp

    return [blp]


def init_app(app: Flask, hooks: Hooks) -> None:
    """Reward codes mirrored as the store's discount codes: told of each code issued or ended,
    and asked where the platform is with it. (The `sync-store-codes` job is in the ordered
    list of `loyalty.wiring`.)"""
    from connectors import discounts

    hooks.reward_code_issued.append(discounts.code_issued)
    hooks.reward_codes_ended.append(discounts.codes_ended)
    hooks.reward_code_platform = discounts.code_platforms
