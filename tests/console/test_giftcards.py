"""Gift cards in the console: search and list, the card page (balance, holds, transactions,
purchase; never the code), issuing with the code shown once, adjusting and disabling through
the API's services (and their refusals), roles."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from console import accounts
from loyalty.audit import AuditLog
from loyalty.codes import normalize_code
from loyalty.extensions import db
from loyalty.idempotency import IdempotencyRecord
from loyalty.program.service import get_program
from loyalty.types import utcnow
from rewards.giftcards import service
from rewards.giftcards.models import GiftCard, GiftCardPurchase, GiftCardTransaction
from tests.console.conftest import PASSWORD, assert_strict_csp, csrf_token, post_form, sign_in

SECRETS = ["test-secret-old", "test-secret-new"]


class NoLimits:
    """A code guard that counts nothing (the limits have their own tests)."""

    def check(self):
        pass

    def failed(self):
        pass


def make_card(session, amount=5000, **extra):
    issued = service.issue_card(
        session, get_program(session), amount=amount, currency="USD", secrets=SECRETS,
        actor="test", now=utcnow(), **extra,
    )  # fmt: skip
    session.commit()
    return issued


def make_hold(session, code, amount, order_id, **extra):
    view = service.create_hold(
        session, guard=NoLimits(), code_text=code, amount=amount, order_id=order_id,
        secrets=SECRETS, now=utcnow(), actor="test", **extra,
    )  # fmt: skip
    session.commit()
    return view


def code_forms(code: str) -> list[str]:
    """The code as the page could show it: grouped, plain, lower case."""
    plain = normalize_code(code)
    return [plain, plain.lower(), "-".join(plain[i : i + 4] for i in range(0, 16, 4))]


def text_of(response) -> str:
    return response.get_data(as_text=True)


def cards_count(session) -> int:
    return session.scalar(select(func.count()).select_from(GiftCard))


# --- search and list -------------------------------------------------------------------------


def test_the_list_shows_cards_newest_first_without_codes_and_pages(console_client, session):
    made = [make_card(session, amount=1000 * (i + 1)) for i in range(5)]
    client = console_client("support")
    from console.giftcards import views

    original = views.PAGE_SIZE
    views.PAGE_SIZE = 3
    try:
        first = client.get("/console/gift-cards")
        assert first.status_code == 200
        assert_strict_csp(first)
        html = text_of(first)
        ids = [int(i) for i in re.findall(r">Card (\d+)</a>", html)]
        assert ids == [made[4].card.id, made[3].card.id, made[2].card.id]
        assert "$5,000.00" not in html and "$50.00" in html
        nxt = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*rel="next"', html).group(1)
        second = text_of(client.get(nxt.replace("&amp;", "&")))
        assert [int(i) for i in re.findall(r">Card (\d+)</a>", second)] == [
            made[1].card.id, made[0].card.id,
        ]  # fmt: skip
        assert "First page" in second
    finally:
        views.PAGE_SIZE = original
    for issued in made:
        for form in code_forms(issued.code):
            assert form not in html and form not in second


def test_filters_by_status_and_source_like_the_api(console_client, session):
    admin_card = make_card(session)
    bought = make_card(session, source="stripe")
    disabled = make_card(session)
    service.disable(session, disabled.card.id, utcnow(), "test")
    session.commit()
    client = console_client("support")

    def listed(query):
        return {int(i) for i in re.findall(r">Card (\d+)</a>", text_of(client.get(query)))}

    assert listed("/console/gift-cards?source=stripe") == {bought.card.id}
    assert disabled.card.id in listed("/console/gift-cards?status=disabled")
    active = listed("/console/gift-cards?status=active&source=admin")
    assert admin_card.card.id in active and disabled.card.id not in active
    assert bought.card.id not in active
    assert listed("/console/gift-cards?status=nonsense") >= {admin_card.card.id, bought.card.id}


def test_search_by_last4_or_id_opens_the_one_card(console_client, session):
    issued = make_card(session)
    client = console_client("support")
    last4 = normalize_code(issued.code)[-4:]
    answer = client.get(f"/console/gift-cards?q={last4.lower()}")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/console/gift-cards/{issued.card.id}")
    answer = client.get(f"/console/gift-cards?q={issued.card.id}")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/console/gift-cards/{issued.card.id}")
    nothing = text_of(client.get("/console/gift-cards?q=zz"))
    assert "No gift card ends in “zz” or has that id." in nothing


def test_search_by_last4_lists_every_card_sharing_it(console_client, session):
    one, two = make_card(session), make_card(session)
    two.card.last4 = one.card.last4  # two codes can end alike
    session.commit()
    client = console_client("support")
    answer = client.get(f"/console/gift-cards?q={one.card.last4}")
    assert answer.status_code == 200
    ids = {int(i) for i in re.findall(r">Card (\d+)</a>", text_of(answer))}
    assert ids == {one.card.id, two.card.id}


def test_htmx_search_answers_only_the_results(console_client, session):
    issued = make_card(session)
    client = console_client("support")
    answer = client.get(
        f"/console/gift-cards?q={issued.card.last4}", headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    html = text_of(answer)
    assert html.lstrip().startswith('<section id="results"') and "<html" not in html
    assert f">Card {issued.card.id}</a>" in html


# --- the card page ---------------------------------------------------------------------------


def test_card_page_shows_balance_holds_and_transactions_in_words(console_client, session):
    issued = make_card(session, amount=10000, bonus_amount=1500, note="Apology for order 77")
    make_hold(session, issued.code, 2500, "ord-active")
    captured = make_hold(session, issued.code, 4000, "ord-paid")
    service.capture_hold(session, captured.id, 3000, utcnow(), "test")
    voided = make_hold(session, issued.code, 500, "ord-gone")
    service.void_hold(session, voided.id, utcnow(), "test")
    session.commit()
    client = console_client("support")
    answer = client.get(f"/console/gift-cards/{issued.card.id}")
    assert answer.status_code == 200
    html = text_of(answer)
    balance = re.search(r"Can be spent now</dt><dd>([^<]+)<", html).group(1)
    assert balance == "$60.00"  # 100 + 15 bonus − 30 captured − 25 held
    assert "Held for orders</dt><dd>$25.00" in html
    assert "Apology for order 77" in html
    holds = html[html.index('id="holds"') : html.index('id="transactions"')]
    assert re.search(r"ord-active.*?\$25\.00.*?Active", holds, re.S)
    assert re.search(r"ord-paid.*?\$40\.00.*?\$30\.00.*?Partly captured", holds, re.S)
    assert re.search(r"ord-gone.*?Voided", holds, re.S)
    transactions = html[html.index('id="transactions"') :]
    for sentence in (
        "Issued with $100.00 and a $15.00 bonus",
        "Held $25.00 for order ord-active",
        "Spent $30.00 on order ord-paid",
        "Released $10.00 held for order ord-paid",
        "Released $5.00 held for order ord-gone",
    ):
        assert sentence in transactions, sentence
    for form in code_forms(issued.code):
        assert form not in html


def test_a_bought_card_shows_its_purchase_record(console_client, session):
    issued = make_card(session, amount=7500, source="stripe")
    session.add(
        GiftCardPurchase(
            session_id="cs_test_abc123", amount=7500, currency="USD",
            purchaser_email="buyer@example.com", recipient_email="friend@example.com",
            status="completed", card_id=issued.card.id, completed_at=utcnow(),
            sealed_code="00" * 10,
        )
    )  # fmt: skip
    session.commit()
    client = console_client("support")
    html = text_of(client.get(f"/console/gift-cards/{issued.card.id}"))
    purchase = html[html.index('id="purchase"') : html.index('id="holds"')]
    assert "buyer@example.com" in purchase and "friend@example.com" in purchase
    assert "cs_test_abc123" in purchase and "$75.00" in purchase
    assert "Not yet: the storefront collects it once" in purchase
    assert "00" * 10 not in purchase  # the sealed code stays out of the page
    assert "Bought with Stripe Checkout for $75.00" in html


def test_an_unknown_card_is_404(console_client):
    assert console_client("support").get("/console/gift-cards/999999999").status_code == 404


# --- issuing ---------------------------------------------------------------------------------


ISSUE = {"amount": "50", "currency": "USD", "bonus_amount": "5.50", "note": "Raffle prize"}


def test_issuing_shows_the_code_once_and_a_second_submit_issues_nothing(console_client, session):
    client = console_client("owner")
    before = cards_count(session)
    form = text_of(client.get("/console/gift-cards/new"))
    submission = re.search(r'name="submission"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="submission"', form
    )
    body = {**ISSUE, "submission": submission.group(1), "csrf_token": csrf_token(form)}
    answer = client.post("/console/gift-cards/new", data=body)
    assert answer.status_code == 201, text_of(answer)
    assert answer.headers["Cache-Control"] == "no-store"
    assert_strict_csp(answer)
    html = text_of(answer)
    code = re.search(r'<output id="gift-card-code"[^>]*>([^<]+)</output>', html).group(1)
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert "The card holds $55.50" in html
    card = session.scalars(select(GiftCard).order_by(GiftCard.id.desc())).first()
    assert cards_count(session) == before + 1
    assert (card.paid_amount, card.bonus_amount, card.note) == (5000, 550, "Raffle prize")
    assert card.last4 == normalize_code(code)[-4:]
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "gift_card.issue"))
    assert audit.actor == client.admin.audit_name and audit.object_id == str(card.id)
    # the code is in no stored answer, session cookie or redirect
    stored = session.scalars(select(IdempotencyRecord.body)).all()
    assert not any(normalize_code(code) in value or code in value for value in stored)
    cookies = "".join(c.value for c in client._cookies.values())
    assert normalize_code(code) not in cookies

    again = client.post("/console/gift-cards/new", data=body)
    assert again.status_code == 303
    assert again.headers["Location"].endswith(f"/console/gift-cards/{card.id}")
    assert cards_count(session) == before + 1
    shown = text_of(client.get(again.headers["Location"]))
    assert "its code was shown only then" in shown
    for page in (shown, text_of(client.get("/console/gift-cards"))):
        for form_of_code in code_forms(code):
            assert form_of_code not in page


def test_issuing_is_refused_with_the_apis_words_and_nothing_is_made(console_client, session):
    client = console_client("owner")
    before = cards_count(session)
    answer = post_form(client, "/console/gift-cards/new", {**ISSUE, "currency": "EUR"})
    assert answer.status_code == 422
    assert "This program runs in USD; got EUR." in text_of(answer)
    answer = post_form(client, "/console/gift-cards/new", {**ISSUE, "amount": "12.345"})
    assert answer.status_code == 422
    assert "USD has 2 decimals at most." in text_of(answer)
    answer = post_form(client, "/console/gift-cards/new", {**ISSUE, "amount": "2000000000"})
    assert answer.status_code == 422 and 'id="amount-error"' in text_of(answer)
    past = (utcnow() - timedelta(days=3)).date().isoformat()
    answer = post_form(client, "/console/gift-cards/new", {**ISSUE, "expires_at": past})
    assert answer.status_code == 422 and "Must be in the future." in text_of(answer)
    assert cards_count(session) == before
    assert "<output" not in text_of(answer)


def test_an_expiry_day_lasts_to_its_end_in_the_program_time_zone(console_client, session):
    client = console_client("owner")
    day = (utcnow() + timedelta(days=30)).date()
    answer = post_form(client, "/console/gift-cards/new", {**ISSUE, "expires_at": day.isoformat()})
    assert answer.status_code == 201
    card = session.scalars(select(GiftCard).order_by(GiftCard.id.desc())).first()
    program = get_program(session)
    from console.display import zone

    local = card.expires_at.astimezone(zone(program.timezone))
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


# --- adjusting and disabling -----------------------------------------------------------------


def test_adjusting_credits_and_debits_through_the_service_once(console_client, session):
    issued = make_card(session, amount=2000)
    card_id = issued.card.id
    client = console_client("support")
    path = f"/console/gift-cards/{card_id}/adjust"
    form = text_of(client.get(path))
    submission = re.search(r'id="submission"[^>]*value="([^"]+)"', form).group(1)
    body = {"amount": "-7.50", "reason": "Shipping refund paid twice", "submission": submission,
            "csrf_token": csrf_token(form)}  # fmt: skip
    answer = client.post(path, data=body)
    assert answer.status_code == 303
    assert client.post(path, data=body).status_code == 303  # the same form again: applied once
    session.expire_all()
    card = session.get(GiftCard, card_id)
    assert (card.balance, card.adjusted_amount) == (1250, -750)
    shown = text_of(client.get(f"/console/gift-cards/{card_id}"))
    assert "−$7.50: Shipping refund paid twice. Balance now $12.50." in shown
    assert "Adjusted: Shipping refund paid twice" in shown
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "gift_card.adjust"))
    assert audit.actor == client.admin.audit_name
    assert audit.after == {"amount": -750, "reason": "Shipping refund paid twice", "balance": 1250}
    credit = post_form(client, path, {"amount": "3", "reason": "Goodwill"})
    assert credit.status_code == 303
    session.expire_all()
    assert session.get(GiftCard, card_id).balance == 1550


def test_a_debit_past_what_can_be_spent_is_refused_and_changes_nothing(console_client, session):
    issued = make_card(session, amount=2000)
    make_hold(session, issued.code, 1500, "ord-held")
    client = console_client("support")
    path = f"/console/gift-cards/{issued.card.id}/adjust"
    rows = session.scalar(select(func.count()).select_from(GiftCardTransaction))
    answer = post_form(client, path, {"amount": "-10", "reason": "Too much"})
    assert answer.status_code == 422
    assert "Only $5.00 can be taken away now; $10.00 was asked." in text_of(answer)
    for bad, message in (("0", "Enter an amount other than zero."), ("abc", "Enter an amount")):
        answer = post_form(client, path, {"amount": bad, "reason": "x"})
        assert answer.status_code == 422 and message in text_of(answer)
    answer = post_form(client, path, {"amount": "1", "reason": "  "})
    assert answer.status_code == 422 and "Say why" in text_of(answer)
    session.expire_all()
    card = session.get(GiftCard, issued.card.id)
    assert (card.balance, card.held_amount, card.adjusted_amount) == (500, 1500, 0)
    assert session.scalar(select(func.count()).select_from(GiftCardTransaction)) == rows
    assert session.scalar(select(AuditLog).where(AuditLog.action == "gift_card.adjust")) is None


def test_disabling_asks_first_then_disables_and_releases_holds(console_client, session):
    issued = make_card(session, amount=3000)
    make_hold(session, issued.code, 1000, "ord-open")
    client = console_client("support")
    path = f"/console/gift-cards/{issued.card.id}/disable"
    confirm = text_of(client.get(path))
    assert "Disable the card ending" in confirm
    assert "the holds of open orders ($10.00) are voided" in confirm
    session.expire_all()
    assert session.get(GiftCard, issued.card.id).status == "active"  # asking changed nothing
    answer = post_form(client, path, {})
    assert answer.status_code == 303
    session.expire_all()
    card = session.get(GiftCard, issued.card.id)
    assert (card.status, card.balance, card.held_amount) == ("disabled", 3000, 0)
    shown = text_of(client.get(f"/console/gift-cards/{issued.card.id}"))
    assert "disabled: it can never be spent again" in shown
    assert "Released $10.00 held for order ord-open: the card was disabled" in shown
    assert "Disable card" not in shown and "Adjust balance" not in shown
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "gift_card.disable"))
    assert audit.actor == client.admin.audit_name
    refused = post_form(
        client, f"/console/gift-cards/{issued.card.id}/adjust", {"amount": "1", "reason": "x"},
        page=f"/console/gift-cards/{issued.card.id}",
    )  # fmt: skip
    assert refused.status_code == 409 and f"Gift card {issued.card.id} is disabled." in text_of(
        refused
    )


# --- roles -----------------------------------------------------------------------------------


def test_support_may_view_adjust_and_disable_but_not_issue(console_client, session):
    issued = make_card(session)
    client = console_client("support")
    card = f"/console/gift-cards/{issued.card.id}"
    for path in ("/console/gift-cards", card, card + "/adjust", card + "/disable"):
        assert client.get(path).status_code == 200, path
    assert client.get("/console/gift-cards/new").status_code == 403
    token = csrf_token(text_of(client.get(card + "/adjust")))
    before = cards_count(session)
    refused = client.post("/console/gift-cards/new", data={**ISSUE, "csrf_token": token})
    assert refused.status_code == 403 and cards_count(session) == before
    assert "Issue a gift card" not in text_of(client.get("/console/gift-cards"))


@pytest.mark.parametrize("role", ["analyst"])
def test_an_analyst_gets_403_on_every_gift_card_page(console_client, session, role):
    issued = make_card(session)
    client = console_client(role)
    card = f"/console/gift-cards/{issued.card.id}"
    for path in ("/console/gift-cards", card, card + "/adjust", card + "/disable",
                 "/console/gift-cards/new"):  # fmt: skip
        assert client.get(path).status_code == 403, path
    token = csrf_token(text_of(client.get("/console/profile")))
    for path, data in ((card + "/adjust", {"amount": "1", "reason": "x"}),
                       (card + "/disable", {}), ("/console/gift-cards/new", ISSUE)):  # fmt: skip
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    session.expire_all()
    assert session.get(GiftCard, issued.card.id).status == "active"
    assert session.get(GiftCard, issued.card.id).adjusted_amount == 0
    assert "Gift cards" not in text_of(client.get("/console/profile"))


def test_owners_see_the_issue_button(console_client):
    html = text_of(console_client("owner").get("/console/gift-cards"))
    assert "Issue a gift card" in html and "No gift cards yet" in html


@pytest.mark.postgres
@pytest.mark.concurrency
def test_the_issue_form_sent_eight_times_at_once_issues_one_card(pg_app):
    """Real commits from eight connections: one answer shows the code, the others lead to the
    card without it (those that ran side by side with the first have their card rolled
    back)."""
    pg_app.config["ADMIN_PASSWORD_HASHING"] = "cheapest"
    with pg_app.app_context():
        accounts.create_admin(db.session, "issuer@example.com", "owner", PASSWORD)
        db.session.commit()
    client = pg_app.test_client()
    assert sign_in(client, "issuer@example.com").status_code == 303
    form = text_of(client.get("/console/gift-cards/new"))
    cookie = client.get_cookie(pg_app.config["CONSOLE_COOKIE_NAME"], path="/console")
    submission = re.search(r'id="submission"[^>]*value="([^"]+)"', form).group(1)
    body = {**ISSUE, "submission": submission, "csrf_token": csrf_token(form)}
    barrier = threading.Barrier(8)

    def send(_):
        own = pg_app.test_client()
        own.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        barrier.wait()
        answer = own.post("/console/gift-cards/new", data=body)
        return answer.status_code, "gift-card-code" in text_of(answer), answer.location

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftCard)) == 1
        card_id = db.session.scalar(select(GiftCard.id))
    assert (
        sorted(results, key=str)
        == [(201, True, None)] + [(303, False, f"/console/gift-cards/{card_id}")] * 7
    )
    with pg_app.app_context():
        assert (
            db.session.scalar(select(func.count()).where(AuditLog.action == "gift_card.issue")) == 1
        )
        db.session.remove()


def test_who_moved_the_value_is_said_in_words(console_client, session, client, admin, storefront):
    issued = client.post("/v1/gift-cards", json={"amount": 900, "currency": "USD"}, headers=admin)
    card_id = issued.get_json()["id"]
    paid = client.post(f"/v1/gift-cards/{card_id}/adjustments",
                       json={"amount": 100, "reason": "by the API"}, headers=admin)  # fmt: skip
    assert paid.status_code == 201
    console = console_client("support")
    post_form(console, f"/console/gift-cards/{card_id}/adjust", {"amount": "1", "reason": "here"})
    html = text_of(console.get(f"/console/gift-cards/{card_id}"))
    rows = re.findall(r"<td>Adjusted: ([^<]+)</td>\s*<td[^>]*>[^<]*</td>\s*<td>([^<]+)</td>", html)
    assert rows[0] == ("here", console.admin.email)
    assert rows[1][0] == "by the API" and rows[1][1].startswith("API key ")
