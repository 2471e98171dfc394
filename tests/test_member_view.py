"""The member view (`GET /v1/members/{id}`, `GET /v1/me`, order events): every field, read in
one statement."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update

from loyalty.auth import Principal
from loyalty.hooks import Hooks, hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.members.schemas import MemberSchema
from loyalty.widget import service as widget
from loyalty.widget.schemas import MeSchema
from referrals.models import ReferralCode
from tests import factories as f
from tests.conftest import bearer
from tests.statements import recorded
from tests.tiers.helpers import at, beauty_insider, last_year, order, post_event


def exactly(value) -> str:
    """`value` as JSON, so that 1, 1.0 and True (equal in Python) are told apart."""
    return json.dumps(value, sort_keys=True)


def assert_fast_paths_are_the_schemas(session, domains: Hooks) -> int:
    """Every member's view as the fast path writes it (`view_from_row`, what `GET
    /v1/members/{id}`, `/v1/me` and order events send) is what the schemas dump from the same
    row; returns how many members were compared."""
    pks = session.scalars(select(Member.id).order_by(Member.id)).all()
    for pk in pks:
        row = members.BY_ID.row(session, domains, member_id=pk)
        fast = members.view_from_row(session, domains, row)
        view = members.member_view_of_row(session, domains, row)
        assert exactly(fast) == exactly(MemberSchema().dump(view)), pk
        customer_id = session.scalar(select(Member.customer_id).where(Member.id == pk))
        if customer_id is None:
            continue  # erased: no token reaches them
        me, me_row = widget.TOKEN_MEMBER_VIEW.find(
            session, domains, member_id=pk, customer_id=customer_id
        )
        assert me == fast  # the same member, the same view
        me = {**me, "currency": me_row.currency}
        schema_me = MeSchema().dump({**vars(view), "currency": me_row.currency})
        principal = Principal("widget", str(pk), member_id=pk, customer_id=customer_id)
        assert exactly(widget.me(session, domains, principal)) == exactly(me)
        assert exactly(me) == exactly(schema_me), pk
    return len(pks)


def enroll(client, headers, customer_id="c_1"):
    body = {"id": customer_id, "email": f"{customer_id}@example.com", "name": "Ana"}
    response = client.post("/v1/members", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def get(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def token(client, storefront, customer_id="c_1"):
    response = client.post(
        "/v1/widget-tokens", json={"customer_id": customer_id}, headers=storefront
    )
    assert response.status_code == 201, response.get_json()
    return bearer(response.get_json()["token"])


def member_pk(session, customer_id="c_1") -> int:
    return members.get_member(session, customer_id).id


def test_view_of_a_member_in_a_higher_tier_with_spend_in_two_periods(
    client, admin, storefront, app, session
):
    beauty_insider(client, admin)
    y = last_year()
    enrolled = enroll(client, storefront)
    post_event(client, storefront, order(40_000, at(y, 6)))  # VIB last year: kept this year
    post_event(client, storefront, order(5_000, datetime.now(UTC)))  # this year: 50.00
    view = get(client, "/v1/members/c_1", storefront)
    code = view["referral"]["code"]
    assert view == {
        "id": "c_1",
        "email": "c_1@example.com",
        "name": "Ana",
        "birthday": None,
        "enrolled_at": enrolled["enrolled_at"],
        "points": {"available": 0, "pending": 400 + 62, "lifetime_earned": 462},
        "tier": {
            "id": view["tier"]["id"],
            "name": "VIB",
            "multiplier": "1.25",
            "perks": [],
            # Reached last year, kept until the end of this one.
            "ends_at": datetime(y + 2, 1, 1, tzinfo=UTC).isoformat(),
        },
        "qualifying_spend": 5_000,
        "tier_basis": "spend",
        "qualifying_value": 5_000,
        "next_tier": {
            "name": "Rouge",
            "threshold": 100_000,
            "remaining": 95_000,
            "remaining_spend": 95_000,
        },
        "referral": {"code": code, "url": f"{app.config['LOYALTY_PUBLIC_URL']}/r/{code}"},
    }
    # The widget shows the same member view, with the program's currency.
    me = get(client, "/v1/me", token(client, storefront))
    assert me == {**view, "currency": "USD"}
    # Both are written by hand (the fast path): they must be what the schemas give.
    assert_fast_paths_are_the_schemas(session, hooks())


@pytest.mark.parametrize("path", ["/v1/members/c_1", "/v1/me"])
def test_views_are_their_schemas_dump_also_with_nulls(client, storefront, session, path):
    enroll(client, storefront)
    session.execute(delete(ReferralCode).where(ReferralCode.member_id == member_pk(session)))
    session.execute(update(Member).where(Member.customer_id == "c_1").values(name=None))
    headers = token(client, storefront) if path == "/v1/me" else storefront
    view = get(client, path, headers)
    assert (view["name"], view["birthday"], view["tier"]["ends_at"]) == (None, None, None)
    assert_fast_paths_are_the_schemas(session, hooks())


def test_a_member_without_a_tier_shows_the_base_tier(client, admin, storefront, session):
    beauty_insider(client, admin)
    enroll(client, storefront)
    session.execute(update(Member).where(Member.customer_id == "c_1").values(tier_id=None))
    view = get(client, "/v1/members/c_1", storefront)
    assert (view["tier"]["name"], view["tier"]["multiplier"], view["tier"]["ends_at"]) == (
        "Member",
        "1",
        None,
    )
    assert view["qualifying_spend"] == 0
    assert view["next_tier"] == {
        "name": "VIB",
        "threshold": 35_000,
        "remaining": 35_000,
        "remaining_spend": 35_000,
    }


def test_the_top_tier_has_no_next_tier(client, admin, storefront):
    beauty_insider(client, admin)
    enroll(client, storefront)
    post_event(client, storefront, order(120_000, datetime.now(UTC)))
    view = get(client, "/v1/members/c_1", storefront)
    assert (view["tier"]["name"], view["next_tier"], view["qualifying_spend"]) == (
        "Rouge",
        None,
        120_000,
    )


def test_a_member_enrolled_before_referrals_gets_a_code_on_first_view(client, storefront, session):
    enroll(client, storefront)
    session.execute(delete(ReferralCode).where(ReferralCode.member_id == member_pk(session)))
    first = get(client, "/v1/members/c_1", storefront)["referral"]
    assert len(first["code"]) == 8
    assert get(client, "/v1/members/c_1", storefront)["referral"] == first


def test_without_the_referrals_domain_the_view_has_no_referral(client, storefront, session):
    enroll(client, storefront)
    pk = member_pk(session)
    with_referrals, _row = members.BY_ID.find(session, hooks(), member_id=pk)
    core_only, _row = members.BY_ID.find(session, Hooks(), member_id=pk)
    assert with_referrals["referral"] is not None
    assert core_only == {**with_referrals, "referral": None}
    for domains in (hooks(), Hooks()):
        assert_fast_paths_are_the_schemas(session, domains)


def test_an_erased_member_view_is_anonymous_and_has_no_referral(client, admin, session):
    enroll(client, admin)
    member = members.get_member(session, "c_1")
    assert client.delete("/v1/members/c_1", headers=admin).status_code == 204
    view = members.member_view(session, hooks(), member)
    assert (view["id"], view["email"], view["name"], view["referral"]) == (None, None, None, None)
    assert client.get("/v1/members/c_1", headers=admin).status_code == 404


def test_an_order_event_answers_with_the_view_after_its_effects(client, admin, storefront):
    beauty_insider(client, admin)
    enroll(client, storefront)
    body = post_event(client, storefront, order(40_000, datetime.now(UTC)))
    assert body["member"]["tier"]["name"] == "VIB"
    assert body["member"]["points"]["pending"] == 400
    assert body["member"] == get(client, "/v1/members/c_1", storefront)


def test_a_token_whose_member_is_gone_reads_nothing(client, admin, storefront, session):
    enroll(client, storefront)
    widget = token(client, storefront)
    # Erased by hand, keeping the customer id: the token's member is still not there.
    session.execute(
        update(Member).where(Member.customer_id == "c_1").values(erased_at=datetime.now(UTC))
    )
    response = client.get("/v1/me", headers=widget)
    assert response.status_code == 401
    assert response.get_json()["type"] == "unauthorized"
    assert "points" not in response.get_json()


@pytest.mark.parametrize(
    ("path", "origin"),
    [("/v1/members/c_1", None), ("/v1/me", None), ("/v1/me", "https://shop.example.com")],
)
def test_the_view_is_one_select(client, admin, storefront, path, origin):
    program = get(client, "/v1/program", admin)
    program["widget_origins"] = ["https://shop.example.com"]
    assert client.put("/v1/program", json=program, headers=admin).status_code == 200
    enroll(client, storefront)
    post_event(client, storefront, f.paid("c_1"))
    headers = token(client, storefront) if path == "/v1/me" else storefront
    if origin:
        headers = {**headers, "Origin": origin}
    # Warm: the API key and the program's settings (CORS) are cached from here on.
    warm = client.get(path, headers=headers)
    assert warm.status_code == 200
    assert warm.headers.get("Access-Control-Allow-Origin") == origin
    with recorded() as sent:
        get(client, path, headers)
    selects = [s for s in sent if s.upper().startswith("SELECT")]
    assert len(selects) == 1, sent


def test_the_fast_path_is_the_schema_for_members_of_every_kind(client, admin, storefront, session):
    """Over members in every tier, with and without a next tier, pending and available points,
    a birthday or none, an old one without a tier, one without a share code yet, one erased,
    one whose friend claimed their link — and without the referrals domain."""
    beauty_insider(client, admin)
    y = last_year()
    for customer_id in ("base", "vib", "top", "bday", "notier", "nocode", "gone", "friend"):
        enroll(client, storefront, customer_id)
    post_event(client, storefront, order(40_000, at(y, 6), customer_id="vib"))
    post_event(client, storefront, order(5_000, datetime.now(UTC), customer_id="vib"))
    post_event(client, storefront, order(120_000, datetime.now(UTC), customer_id="top"))
    adjustment = {"points": 250, "reason": "goodwill"}
    response = client.post("/v1/members/top/adjustments", json=adjustment, headers=admin)
    assert response.status_code == 201
    session.execute(
        update(Member).where(Member.customer_id == "bday").values(birthday="02-29", name=None)
    )
    session.execute(update(Member).where(Member.customer_id == "notier").values(tier_id=None))
    session.execute(
        delete(ReferralCode).where(ReferralCode.member_id == member_pk(session, "nocode"))
    )
    assert client.delete("/v1/members/gone", headers=admin).status_code == 204
    code = get(client, "/v1/members/base", storefront)["referral"]["code"]
    post_event(client, storefront, order(3_000, datetime.now(UTC), customer_id="friend",
                                         referral_code=code))  # fmt: skip
    views = {c: get(client, f"/v1/members/{c}", storefront) for c in ("vib", "top", "notier")}
    assert views["vib"]["tier"]["ends_at"] is not None and views["vib"]["points"]["pending"] > 0
    assert views["top"]["next_tier"] is None and views["top"]["points"]["available"] == 250
    assert views["notier"]["tier"]["name"] == "Member"
    for domains in (hooks(), Hooks()):
        assert assert_fast_paths_are_the_schemas(session, domains) == 8
