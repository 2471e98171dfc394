"""Small HTTP helpers for the gift card tests."""


def issue(client, admin, amount=10000, **extra):
    response = client.post(
        "/v1/gift-cards", json={"amount": amount, "currency": "USD", **extra}, headers=admin
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def hold(client, headers, code, amount, order_id="ord_1", **extra):
    body = {"code": code, "amount": amount, "order_id": order_id, **extra}
    return client.post("/v1/gift-cards/holds", json=body, headers=headers)


def card(client, admin, card_id):
    response = client.get(f"/v1/gift-cards/{card_id}", headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def lookup(client, headers, code, ip="10.0.0.1"):
    return client.post(
        "/v1/gift-cards/lookup",
        json={"code": code},
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )
