"""The reward catalog in the console: list, create, edit, retire through the API's schemas,
service and audit records; refusals shown in the form and changing nothing; roles."""

from decimal import Decimal

from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.tiers import service as tiers
from rewards.catalog import service as catalog
from rewards.catalog.models import Reward
from tests.console.conftest import csrf_token, post_form

FORM = {
    "name": "Ten off",
    "description": "",
    "kind": "amount_off",
    "amount": "10.00",
    "percent": "",
    "sku": "",
    "points_cost": "500",
    "min_order": "25",
    "tier": "",
    "stock": "40",
    "per_member_limit": "2",
    "starts_at": "",
    "ends_at": "",
    "code_valid_days": "60",
    "active": "y",
}


def _count(session, model=Reward):
    return session.scalar(select(func.count()).select_from(model))


def test_the_catalog_lists_rewards_with_stock_and_status(console_client, session):
    catalog.create_reward(session, {"name": "Sample", "kind": "free_product", "sku": "S-1",
                                    "points_cost": 100, "per_member_limit": 3})  # fmt: skip
    catalog.create_reward(session, {"name": "Paused one", "kind": "percent_off", "percent": 15,
                                    "points_cost": 800, "stock": 0, "active": False})  # fmt: skip
    session.commit()
    client = console_client("analyst")
    page = client.get("/console/rewards").get_data(as_text=True)
    assert "Sample" in page and "Free S-1" in page and "Unlimited" in page
    assert "15% off" in page and "Paused" in page
    assert "New reward" not in page and "can read the catalog but not change it" in page


def test_an_owner_creates_a_reward_through_the_api_schema(console_client, session, admin):
    tiers.create_tier(session, {"name": "Gold", "threshold": 50_000, "multiplier": Decimal(2)})
    session.commit()
    client = console_client("owner")
    answer = post_form(
        client,
        "/console/rewards/new",
        {**FORM, "tier": "Gold", "starts_at": "2030-03-01T00:00", "ends_at": "2030-03-31T23:00"},
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    reward = session.scalar(select(Reward).where(Reward.name == "Ten off"))
    api = client.get(f"/v1/rewards/{reward.id}", headers=admin).get_json()
    assert api["amount"] == 1000 and api["min_order"] == 2500 and api["tier"] == "Gold"
    assert api["stock"] == 40 and api["per_member_limit"] == 2 and api["code_valid_days"] == 60
    assert api["starts_at"].startswith("2030-03-01T00:00")  # the program's zone: UTC
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "reward.create"))
    assert audit.actor == f"admin:{client.admin.id}" and audit.after["name"] == "Ten off"
    page = client.get("/console/rewards").get_data(as_text=True)
    assert "Reward “Ten off” created." in page and "$10.00 off" in page
    assert "1 Mar 2030 – 31 Mar 2030" in page
    form = client.get(f"/console/rewards/{reward.id}").get_data(as_text=True)
    assert 'value="2030-03-01T00:00"' in form and 'value="10.00"' in form
    assert 'value="25.00"' in form and '<option selected value="Gold">' in form


def test_a_bad_value_is_refused_in_the_form_and_changes_nothing(console_client, session, admin):
    client = console_client("owner")
    before = _count(session)
    answer = post_form(client, "/console/rewards/new", {**FORM, "kind": "percent_off",
                                                          "percent": "150"})  # fmt: skip
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    api = client.post(
        "/v1/rewards",
        json={"name": "x", "kind": "percent_off", "percent": 150, "points_cost": 5},
        headers=admin,
    ).get_json()
    assert api["errors"]["percent"][0] in page.split('id="percent-error"')[1]
    missing = post_form(client, "/console/rewards/new", {**FORM, "amount": ""})
    assert missing.status_code == 422
    assert "Required for kind amount_off." in missing.get_data(as_text=True)
    session.expire_all()
    assert _count(session) == before
    assert session.scalar(select(AuditLog).where(AuditLog.action == "reward.create")) is None


def test_an_admin_edits_a_reward_and_the_change_is_audited(console_client, session, admin):
    reward = catalog.create_reward(
        session, {"name": "Old name", "kind": "free_shipping", "points_cost": 250}
    )
    session.commit()
    client = console_client("admin")
    page = client.get(f"/console/rewards/{reward.id}").get_data(as_text=True)
    assert 'value="Old name"' in page and "Save reward" in page
    answer = post_form(
        client,
        f"/console/rewards/{reward.id}",
        {**FORM, "name": "New name", "kind": "percent_off", "amount": "", "percent": "20",
         "stock": "", "per_member_limit": ""},
    )  # fmt: skip
    assert answer.status_code == 303, answer.get_data(as_text=True)
    api = client.get(f"/v1/rewards/{reward.id}", headers=admin).get_json()
    assert api["name"] == "New name" and api["kind"] == "percent_off" and api["percent"] == 20
    assert api["stock"] is None and api["per_member_limit"] is None
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "reward.update"))
    assert audit.before["name"] == "Old name" and audit.after["name"] == "New name"
    assert audit.actor == f"admin:{client.admin.id}"
    refused = post_form(
        client,
        f"/console/rewards/{reward.id}",
        {**FORM, "ends_at": "2030-01-01T00:00", "starts_at": "2030-02-01T00:00"},
    )
    assert refused.status_code == 422
    assert "Must be after starts_at." in refused.get_data(as_text=True)
    assert client.get(f"/v1/rewards/{reward.id}", headers=admin).get_json() == api


def test_retiring_a_reward_takes_it_out_of_the_catalog(console_client, session, admin):
    reward = catalog.create_reward(
        session, {"name": "Going away", "kind": "free_shipping", "points_cost": 250}
    )
    session.commit()
    client = console_client("owner")
    path = f"/console/rewards/{reward.id}/retire"
    answer = post_form(client, path, {})
    assert answer.status_code == 303
    assert client.get(f"/v1/rewards/{reward.id}", headers=admin).status_code == 404
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "reward.delete"))
    assert audit.before["name"] == "Going away" and audit.after is None
    listing = client.get("/console/rewards").get_data(as_text=True)
    assert "Reward “Going away” retired." in listing and "Retired rewards (1)" in listing
    assert f'href="/console/rewards/{reward.id}"' not in listing
    retired = client.get("/console/rewards?show=retired").get_data(as_text=True)
    assert "Going away" in retired and "Retired" in retired
    assert client.get(path).status_code == 404
    again = client.post(path, data={"csrf_token": csrf_token(retired)})
    assert again.status_code == 303
    assert "is retired already" in client.get("/console/rewards").get_data(as_text=True)
    assert session.scalar(select(func.count()).where(AuditLog.action == "reward.delete")) == 1


def test_support_and_analysts_cannot_change_the_catalog(console_client, session):
    reward = catalog.create_reward(
        session, {"name": "Fixed", "kind": "free_shipping", "points_cost": 250}
    )
    session.commit()
    assert console_client("support").get("/console/rewards").status_code == 403
    analyst = console_client("analyst")
    page = analyst.get(f"/console/rewards/{reward.id}").get_data(as_text=True)
    assert "Save reward" not in page and "Retire reward" not in page
    token_page = f"/console/rewards/{reward.id}"
    for path in (f"/console/rewards/{reward.id}", f"/console/rewards/{reward.id}/retire",
                 "/console/rewards/new"):  # fmt: skip
        assert post_form(analyst, path, FORM, page=token_page).status_code == 403
    assert analyst.get("/console/rewards/new").status_code == 403
    session.expire_all()
    assert session.get(Reward, reward.id).name == "Fixed"


def test_times_are_typed_in_the_program_time_zone(console_client, session, admin):
    from loyalty.program.service import get_program

    get_program(session, for_update=True).timezone = "Europe/Paris"
    session.commit()
    client = console_client("owner")
    answer = post_form(client, "/console/rewards/new", {**FORM, "starts_at": "2030-03-01T00:00"})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    reward = session.scalar(select(Reward).where(Reward.name == "Ten off"))
    api = client.get(f"/v1/rewards/{reward.id}", headers=admin).get_json()
    assert api["starts_at"] == "2030-02-28T23:00:00+00:00"
    form = client.get(f"/console/rewards/{reward.id}").get_data(as_text=True)
    assert 'value="2030-03-01T00:00"' in form and "(Europe/Paris)" in form
