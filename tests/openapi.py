"""Hypothesis settings shared by the tests that generate requests from /openapi.json."""

from hypothesis import HealthCheck, settings


def generated_requests(max_examples: int) -> settings:
    """Reproducible (derandomized, no example database) and without a deadline or health
    checks: a generated request may touch the database, or be refused most of the time."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
