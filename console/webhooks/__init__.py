"""Outbound webhooks in the console: endpoints (create with the secret shown once, rotate the
secret, disable and enable) and each endpoint's deliveries ("send again" for a failed one)."""

from console.webhooks.views import bp

__all__ = ["bp"]
