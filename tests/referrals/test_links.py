"""Share links: clicks, redirects, and the signed click token a claim may carry."""

from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from loyalty.auth import issue_widget_token
from loyalty.extensions import db
from referrals.links import CLICK_SALT
from referrals.models import Referral, ReferralClick
from tests.referrals.helpers import claim, code_of, enroll, follow, order, settings, stats


def test_link_records_the_click_and_redirects_with_the_code(client, admin, storefront, app):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    response = client.get(f"/r/{code}", headers={"User-Agent": "Firefox"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == app.config["LOYALTY_PUBLIC_URL"]
    assert parse_qs(location.query)["ref"] == [code]
    click = db.session.scalars(select(ReferralClick)).one()
    assert (click.user_agent, click.ip) == ("Firefox", "127.0.0.1")
    follow(client, code.lower())  # typed in lower case: the same code
    assert stats(client, storefront, "ana")["clicks"] == 2


def test_landing_url_keeps_its_own_query(client, admin, storefront):
    enroll(client, admin, "ana")
    settings(client, admin, landing_url="https://shop.example/welcome?utm_source=referral")
    code = code_of(client, storefront, "ana")
    location = urlsplit(client.get(f"/r/{code}").headers["Location"])
    assert (location.netloc, location.path) == ("shop.example", "/welcome")
    query = parse_qs(location.query)
    assert (query["utm_source"], query["ref"]) == (["referral"], [code])


def test_unknown_code_is_404(client):
    response = client.get("/r/NOSUCHCD")
    assert response.status_code == 404
    assert response.get_json()["type"] == "not-found"
    assert db.session.scalar(select(func.count()).select_from(ReferralClick)) == 0


def test_unknown_code_on_a_claim_is_404(client, storefront):
    response = claim(client, storefront, "NOSUCHCD", "bea@example.com")
    assert response.status_code == 404


def test_claim_with_the_click_token_is_attributed_to_the_click(client, admin, storefront):
    enroll(client, admin, "ana")
    _ref, token = follow(client, code_of(client, storefront, "ana"))
    code = code_of(client, storefront, "ana")
    response = claim(client, storefront, code, "bea@example.com", click=token)
    assert response.status_code == 201
    item = client.get(f"/v1/referrals/{response.get_json()['referral_id']}", headers=admin)
    click = db.session.scalars(select(ReferralClick)).one()
    assert item.get_json()["click_id"] == click.id


def tampered(token: str) -> str:
    payload, _, rest = token.partition(".")
    return payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + rest


@pytest.mark.parametrize("how", ["tampered", "forged_secret", "other_salt", "other_code"])
def test_tampered_or_forged_click_token_is_refused(client, admin, storefront, app, how):
    enroll(client, admin, "ana")
    enroll(client, admin, "bob")
    code = code_of(client, storefront, "ana")
    _ref, token = follow(client, code)
    if how == "tampered":
        token = tampered(token)
    elif how == "forged_secret":
        token = URLSafeTimedSerializer("guessed-secret", salt=CLICK_SALT).dumps(
            {"click": 1, "code": code}
        )
    elif how == "other_salt":  # a valid widget token is not a click token
        with app.test_request_context():
            token = issue_widget_token(1, "ana")
    elif how == "other_code":  # a genuine click on Bob's link moved onto Ana's code
        _ref, token = follow(client, code_of(client, storefront, "bob"))
    response = claim(client, storefront, code, "bea@example.com", click=token)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["type"] == "validation-error"
    assert "click" in body["errors"]
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0


def test_click_token_signed_with_an_older_secret_still_verifies(client, admin, storefront, app):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    follow(client, code)
    click = db.session.scalars(select(ReferralClick)).one()
    old = URLSafeTimedSerializer(app.config["SECRET_KEYS"][0], salt=CLICK_SALT)
    token = old.dumps({"click": click.id, "code": code})
    response = claim(client, storefront, code, "bea@example.com", click=token)
    assert response.status_code == 201, response.get_json()


# --- the service's own landing page, when the program names none -----------------------------


def test_without_a_landing_url_the_link_lands_on_the_friends_offer(client, admin, storefront, app):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    settings(client, admin, friend_reward={"kind": "amount_off", "amount": 1000,
                                           "min_order": 4000})  # fmt: skip
    location = urlsplit(client.get(f"/r/{code}").headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{app.config['LOYALTY_PUBLIC_URL']}/welcome"
    )
    query = parse_qs(location.query)
    page = client.get(f"{location.path}?{location.query}")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "10.00 USD off your first order of 40.00 USD or more" in html
    # The code and the signed click stay with the visit, for the claim and the first order.
    assert f'name="ref" value="{code}"' in html
    assert f'name="click" value="{query["click"][0]}"' in html


def test_the_landing_page_claims_and_the_friends_first_order_converts(client, admin, storefront):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    ref, click = follow(client, code.lower())
    response = client.post(
        "/welcome",
        data={"ref": ref, "click": click, "email": "bea@example.com"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    referral = db.session.scalars(select(Referral)).one()
    assert (referral.friend_email, referral.status) == ("bea@example.com", "claimed")
    assert referral.click_id == db.session.scalars(select(ReferralClick.id)).one()
    friend_code = referral.friend_reward["code"]
    assert friend_code in response.get_data(as_text=True)

    _event, body = order(client, storefront, "bea", email="bea@example.com",
                         reward_codes=[friend_code])  # fmt: skip
    used = [e["code"] for e in body["effects"] if e["kind"] == "reward_code_used"]
    assert used == [friend_code]
    assert stats(client, storefront, "ana")["conversions"] == 1


def test_the_landing_page_shows_a_refused_claim_and_changes_nothing(client, admin, storefront):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    response = client.post("/welcome", data={"ref": code, "email": "ana@example.com"})
    assert response.status_code == 422
    assert "refusal" in response.get_data(as_text=True)
    response = client.post("/welcome", data={"ref": code, "email": "not an address"})
    assert response.status_code == 422
    assert db.session.scalars(select(Referral)).all() == []


def test_the_landing_page_needs_a_known_code_and_is_not_served_in_production(
    client, admin, storefront, app, monkeypatch
):
    assert client.get("/welcome?ref=NOSUCHCD").status_code == 404
    assert client.get("/welcome").status_code == 404
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    monkeypatch.setitem(app.config, "LOYALTY_ENV", "production")
    assert client.get(f"/welcome?ref={code}").status_code == 404
    assert client.post("/welcome", data={"ref": code, "email": "b@example.com"}).status_code == 404
