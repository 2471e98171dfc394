"""The evidence behind a held referral, read when it is looked at (`referrals.evidence`)."""

from loyalty.members.models import Member
from referrals import evidence, fraud
from referrals import service as referrals
from tests.referrals.helpers import claim, code_of, enroll, order


def held(client, admin, storefront, friend, friend_ip, referrer_ip):
    enroll(client, admin, "ana", "ana@example.com", name="Ana Lopez")
    order(client, storefront, "ana", email="ana@example.com", days_ago=20, ip=referrer_ip,
          order_id="ord-ana-1")  # fmt: skip
    order(client, storefront, "ana", email="ana@example.com", days_ago=10, ip="192.0.2.77",
          order_id="ord-ana-2")  # fmt: skip
    body = claim(client, storefront, code_of(client, storefront, "ana"), friend,
                 ip=friend_ip).get_json()  # fmt: skip
    assert body["status"] == "review", body
    return body["referral_id"]


def findings(session, referral_id):
    row = referrals.get_referral(session, referral_id)
    referrer = session.get(Member, row.referrer_id)
    return evidence.explain(session, row, referrer, referrals.get_settings(session))


def test_an_ipv6_neighbour_in_the_same_64_is_the_referrers_address(client, admin, storefront,
                                                                   session):  # fmt: skip
    referral_id = held(client, admin, storefront, "bea@example.com",
                       friend_ip="2001:db8:1:2::99", referrer_ip="2001:db8:1:2::1")  # fmt: skip
    [finding] = findings(session, referral_id)
    assert finding.rule == fraud.SAME_IP_AS_REFERRER
    assert [o.order_id for o in finding.orders] == ["ord-ana-1"]  # not the order from elsewhere
    assert finding.neighbours == [] and finding.neighbours_total == 0


def test_other_referrals_from_the_address_are_listed_newest_first(client, admin, storefront,
                                                                  session):  # fmt: skip
    first = held(client, admin, storefront, "bea@example.com", "203.0.113.5", "203.0.113.5")
    code = code_of(client, storefront, "ana")
    second = claim(client, storefront, code, "cleo@example.com", ip="203.0.113.5").get_json()
    third = claim(client, storefront, code, "dan@example.com", ip="203.0.113.5").get_json()
    [finding] = findings(session, first)
    assert [n.id for n in finding.neighbours] == [third["referral_id"], second["referral_id"]]
    assert [n.referrer_customer_id for n in finding.neighbours] == ["ana", "ana"]
    assert finding.neighbours_total == 2


def test_a_lookalike_of_another_members_address_names_that_member(client, admin, storefront,
                                                                   session):  # fmt: skip
    enroll(client, admin, "zoe", "zoe@example.com")
    referral_id = held(client, admin, storefront, "z\u043ee@example.com", "198.51.100.3",
                       "203.0.113.5")  # fmt: skip
    [finding] = findings(session, referral_id)
    assert finding.rule == fraud.CONFUSABLE_EMAIL
    assert (finding.resembles, finding.resembles_member, finding.of_referrer) == (
        "zoe@example.com", "zoe", False,
    )  # fmt: skip
    assert [(c.char, c.name, c.looks_like) for c in finding.characters] == [
        ("\u043e", "CYRILLIC SMALL LETTER O", "o")
    ]


def test_after_erasure_the_evidence_says_what_is_gone(client, admin, storefront, session):
    referral_id = held(client, admin, storefront, "\u0430na@example.com", "198.51.100.4",
                       "203.0.113.5")  # fmt: skip
    assert client.delete("/v1/members/ana", headers=admin).status_code == 204
    session.expire_all()
    [finding] = findings(session, referral_id)
    assert finding.rule == fraud.CONFUSABLE_EMAIL
    assert finding.resembles_member is None and not finding.of_referrer
