"""A messageId repeated inside one batch is stored once, the first copy (one multi-row INSERT on PostgreSQL)."""

from tests.helpers.collector import basic, stored, track


def test_a_message_repeated_in_one_batch_is_stored_once(client, site, engine):
    first = track(event="Product Viewed", messageId="same")
    batch = [first, track(event="Product Added", messageId="same"), track(messageId="other"), first]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic(site["write_key"]))
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 4
    rows = stored(engine)
    assert [(row["message_id"], row["event"]) for row in rows] == [
        ("same", "Product Viewed"),
        ("other", "Product Viewed"),
    ]
