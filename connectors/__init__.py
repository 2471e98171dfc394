"""Store connectors: Shopify and WooCommerce orders in, reward codes out as store discount codes.

Inbound, each platform's signed webhooks become the same order events and enrolments as
`POST /v1/events` and `POST /v1/members` (`connectors.intake`); outbound, reward codes are
created on the platform from an outbox after the redeeming transaction commits. One module per
platform holds what is that platform's: its signature, topics and field mapping. An export of
a platform's past orders goes through the same mapping and service (`connectors.backfill`,
`flask --app wsgi connectors import`).
"""

from loyalty.hooks import Hooks


def blueprints() -> list:
    from connectors import shopify, woocommerce  # noqa: F401 - their views join the blueprint
    from connectors.intake import blp

    return [blp]


def init_hooks(hooks: Hooks) -> None:
    """Jobs and order handlers of the connectors: reward codes mirrored as the store's discount
    codes (the `sync-store-codes` job runs before `deliver-webhooks`)."""
    from connectors import discounts

    discounts.init_hooks(hooks)
