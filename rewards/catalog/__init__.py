"""The reward catalog, redemptions and the single-use reward codes honoured at checkout."""


def init_hooks(hooks) -> None:
    """Plug the catalog into the core: code consumption on orders, jobs, erasure, demo data,
    the `reward` report cohort."""
    from rewards.catalog import reports, service

    hooks.jobs["expire-codes"] = service.expire_codes
    hooks.member_erased.append(service.forget_member_codes)
    hooks.member_export["codes"] = service.export_member_codes
    hooks.demo_seed.append(service.seed_demo_rewards)
    hooks.report_cohorts["reward"] = reports.reward_cohorts
