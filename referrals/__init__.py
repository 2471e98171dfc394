"""Referrals: share codes and links, claims, conversion, fraud rules and review."""


def init_hooks(hooks) -> None:
    """Plug referrals into the core: share codes for members, jobs, erasure, demo data,
    the `referral` report cohort.
    (The order handler is listed in `loyalty.register_hooks`, last.)"""
    from referrals import reports, service

    hooks.member_enrolled.append(service.give_code)
    hooks.member_view.append(service.MEMBER_VIEW)
    hooks.member_erased.append(service.forget_member)
    hooks.member_export["referrals"] = service.export_member
    hooks.jobs["referral-rewards"] = service.issue_due_reward_codes
    hooks.demo_seed.append(service.seed_demo)
    hooks.report_cohorts["referral"] = reports.referral_cohorts
