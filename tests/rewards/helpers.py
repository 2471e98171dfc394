"""Small builders shared by the reward tests (HTTP, as a storefront or admin would call)."""


def make_member(client, admin, customer_id="c_1", points=0, email=None):
    response = client.post(
        "/v1/members",
        json={"id": customer_id, "email": email or f"{customer_id}@example.com"},
        headers=admin,
    )
    assert response.status_code in (200, 201), response.get_json()
    if points:
        response = client.post(
            f"/v1/members/{customer_id}/adjustments",
            json={"points": points, "reason": "test"},
            headers=admin,
        )
        assert response.status_code == 201, response.get_json()
    return customer_id


def make_reward(client, admin, **fields):
    body = {"name": "10 off", "kind": "amount_off", "amount": 1000, "points_cost": 500, **fields}
    response = client.post("/v1/rewards", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def redeem(client, headers, customer_id, reward_id):
    return client.post(
        f"/v1/members/{customer_id}/redemptions", json={"reward_id": reward_id}, headers=headers
    )


def points(client, headers, customer_id):
    return client.get(f"/v1/members/{customer_id}", headers=headers).get_json()["points"]


def validate(client, headers, code, customer_id="c_1", subtotal=5000, **extra):
    return client.post(
        "/v1/reward-codes/validate",
        json={"code": code, "customer_id": customer_id, "subtotal": subtotal, **extra},
        headers=headers,
    )
