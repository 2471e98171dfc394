"""The referral handler looks referrals up only while one may wait for the member's order.

A member carries `referral_check`: true from enrolment and whenever a claim names them; an
order whose buyer is exactly the member (customer id, and the member's mailbox or none) and
that finds no referral waiting clears it. Orders of a member with it cleared send nothing.
"""

from sqlalchemy import select, update

from loyalty.extensions import db
from loyalty.members.models import Member
from referrals.service import ReferralConversion
from tests import factories as f
from tests.referrals.helpers import claim, code_of, enroll, order, points, referral_effects
from tests.statements import of_handler, touching


def check_mark(customer_id):
    return db.session.scalar(select(Member.referral_check).where(Member.customer_id == customer_id))


def test_a_member_nobody_referred_is_looked_up_on_the_first_order_only(client, admin, storefront):
    enroll(client, admin, "bea", "bea@example.com")
    no_mailbox = f.paid("bea")
    del no_mailbox["order"]["email"]  # names the member only
    with of_handler(ReferralConversion) as calls:
        order(client, storefront, "bea", email="bea@example.com")
        order(client, storefront, "bea", email="bea@example.com")
        assert client.post("/v1/events", json=no_mailbox, headers=storefront).status_code == 200
    [lookup] = touching(calls[0], "referrals")
    assert "FROM referrals" in lookup and "INSERT" not in lookup  # a look, and no more
    assert calls[1:] == [[], []]
    assert check_mark("bea") is False


def test_a_referred_friend_converts_on_the_first_order_and_the_second_sends_nothing(
    client, admin, storefront
):
    enroll(client, admin, "ana", "ana@example.com")
    enroll(client, admin, "bea", "bea@example.com")
    code = code_of(client, storefront, "ana")
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    with of_handler(ReferralConversion) as calls:
        _, first = order(client, storefront, "bea", email="bea@example.com")
        _, second = order(client, storefront, "bea", email="bea@example.com")
    assert [e["status"] for e in referral_effects(first)] == ["converted"]
    assert referral_effects(second) == []
    assert len(calls[0]) > 0 and calls[1] == []
    assert points(client, storefront, "ana")["pending"] == 500


def test_a_claim_naming_a_member_marks_them_to_be_looked_up(client, admin, storefront):
    enroll(client, admin, "ana", "ana@example.com")
    enroll(client, admin, "bea", "bea@example.com")
    # As a paid order would leave it (a claim racing that order is the real-life case).
    db.session.execute(
        update(Member).where(Member.customer_id == "bea").values(referral_check=False)
    )
    db.session.commit()
    code = code_of(client, storefront, "ana")
    assert claim(client, storefront, code, "BEA@example.com").status_code == 201  # by mailbox
    assert check_mark("bea") is True
    _, body = order(client, storefront, "bea", email="bea@example.com")
    assert [e["status"] for e in referral_effects(body)] == ["converted"]
    assert check_mark("bea") is False


def test_an_order_from_another_mailbox_than_the_members_still_looks(client, admin, storefront):
    enroll(client, admin, "ana", "ana@example.com")
    enroll(client, admin, "bea", "bea@example.com")
    order(client, storefront, "bea", email="bea@example.com")  # clears bea's mark
    assert check_mark("bea") is False
    # Someone claims with a mailbox no order has used yet...
    code = code_of(client, storefront, "ana")
    assert claim(client, storefront, code, "bea.work@example.com").status_code == 201
    # ...and bea pays with it: the referral names this buyer, who is not new.
    with of_handler(ReferralConversion) as calls:
        _, body = order(client, storefront, "bea", email="bea.work@example.com")
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "not_new_customer")
    assert len(calls[0]) > 0
    assert check_mark("bea") is False
    assert points(client, storefront, "ana")["pending"] == 0
