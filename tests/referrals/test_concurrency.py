"""One friend, one referral, under real concurrency on PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from referrals.models import Referral
from referrals.service import SOURCE
from rewards.catalog.models import RewardCode
from tests.referrals.helpers import code_of, enroll

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_20_concurrent_claims_of_one_friend_make_one_referral(pg_app, pg_keys):
    client = pg_app.test_client()
    enroll(client, pg_keys["admin"], "ana", "ana@example.com")
    enroll(client, pg_keys["admin"], "bob", "bob@example.com")
    codes = [code_of(client, pg_keys["storefront"], "ana"),
             code_of(client, pg_keys["storefront"], "bob")]  # fmt: skip
    # The same mailbox spelled several ways, through both referrers' codes at once.
    spellings = ["bea.b@gmail.com", "BeaB@gmail.com", "bea.b+x@googlemail.com", "beab@gmail.com"]

    def send(i):
        response = pg_app.test_client().post(
            "/v1/referrals/claim",
            json={"code": codes[i % 2], "email": spellings[i % 4], "ip": f"198.51.100.{i}"},
            headers=pg_keys["storefront"],
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(send, range(20)))
    won = [body for status, body in results if status == 201]
    lost = [body for status, body in results if status != 201]
    assert len(won) == 1, results
    assert {(b["type"], b["reason"]) for b in lost} == {("referral-rejected", "already_referred")}
    with pg_app.app_context():
        referral = db.session.scalars(select(Referral)).one()
        assert referral.friend_email == "beab@gmail.com"
        assert referral.id == won[0]["referral_id"]
        codes_issued = db.session.scalar(
            select(func.count()).select_from(RewardCode).where(RewardCode.source_type == SOURCE)
        )
        assert codes_issued == 1
