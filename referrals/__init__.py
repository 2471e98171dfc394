"""Referrals: share codes and links, claims, conversion, fraud rules and review."""

from flask import Flask

from loyalty.hooks import Hooks


def init_app(app: Flask, hooks: Hooks) -> None:
    """Plug referrals into the core: share codes for members, erasure, export, the `referral`
    report cohort and the overview's conversions, the widget's referral stats. (Its order
    handler, job and demo data are in the ordered lists of `loyalty.wiring`.)"""
    from referrals import reports, service, widget

    hooks.member_enrolled.append(service.give_code)
    hooks.member_enrolled_many[service.give_code] = service.give_codes  # members enrolled together
    hooks.member_view.append(service.MEMBER_VIEW)
    hooks.member_erased.append(service.forget_member)
    hooks.member_export["referrals"] = service.export_member
    hooks.report_cohorts["referral"] = reports.referral_cohorts
    hooks.report_conversions = reports.referral_conversions  # the overview's conversions
    hooks.member_referrals = widget.member_referrals  # widget /v1/me/referrals, schema-dumped
