"""Referral review in the console: the queue of held referrals with the evidence behind each
rule, a referral's page with approve and reject, lists by status, and the referral program's
settings (views, forms)."""

from console.referrals.views import bp

__all__ = ["bp"]
