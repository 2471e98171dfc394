"""Shared steps for the tier and earning-rule tests."""

from datetime import UTC, datetime, timedelta

from tests import factories as f

VIB, ROUGE = 35_000, 100_000


def post_event(client, headers, event):
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def member(client, headers, customer_id="c_1"):
    response = client.get(f"/v1/members/{customer_id}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def beauty_insider(client, admin):
    """Member 0 (×1), VIB 350.00 (×1.25), Rouge 1,000.00 (×1.5)."""
    for name, threshold, multiplier in (("VIB", VIB, "1.25"), ("Rouge", ROUGE, "1.5")):
        response = client.post(
            "/v1/tiers",
            json={"name": name, "threshold": threshold, "multiplier": multiplier},
            headers=admin,
        )
        assert response.status_code == 201, response.get_json()


def last_year() -> int:
    return datetime.now(UTC).year - 1


def at(year, month, day=1, hour=12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def early_this_year(minutes: int) -> datetime:
    """A moment early in the current year that is never in the future."""
    now = datetime.now(UTC)
    return min(datetime(now.year, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes), now)


def order(amount, when, customer_id="c_1", **kwargs):
    return f.paid(customer_id, lines=[f.line(unit_price=amount)], occurred_at=when, **kwargs)


def kinds(body):
    return [effect["kind"] for effect in body["effects"]]


def tier_change(body):
    changes = [e for e in body["effects"] if e["kind"] == "tier_changed"]
    return (changes[0]["from"], changes[0]["to"]) if changes else None
