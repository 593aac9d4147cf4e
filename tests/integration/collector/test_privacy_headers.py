"""Do-Not-Track and Global Privacy Control headers drop events server-side; IPs can be left out entirely."""

import pytest

from core import sites
from tests.helpers.collector import basic, counts, stored, track


@pytest.mark.parametrize("headers", [{"DNT": "1"}, {"Sec-GPC": "1"}, {"DNT": "1", "Sec-GPC": "1"}])
@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/batch", {"batch": [track(), track("Product Added")]}),
        ("/v1/track", track()),
    ],
)
def test_opted_out_browser_stores_nothing(client, engine, site, headers, path, body):
    response = client.post(path, json=body, headers={**basic(site["write_key"]), **headers})
    assert response.status_code == 200
    assert response.json["accepted"] == 0
    assert response.json["reason"] == "do_not_track"
    assert counts(engine)["events"] == 0
    assert counts(engine)["bad_rows"] == 0


@pytest.mark.parametrize("headers", [{"DNT": "0"}, {"Sec-GPC": "0"}, {}])
def test_other_header_values_are_tracked(client, engine, site, headers):
    client.post("/v1/batch", json={"batch": [track()]}, headers={**basic(site["write_key"]), **headers})
    assert counts(engine)["events"] == 1


def test_a_site_may_choose_not_to_honour_dnt(client, engine, site):
    sites.update_site_settings(engine, site["site_id"], {"honor_dnt": False})
    client.application.extensions["cohortly_site_cache"].clear()
    client.post("/v1/batch", json={"batch": [track()]}, headers={**basic(site["write_key"]), "DNT": "1"})
    assert counts(engine)["events"] == 1


def test_a_site_may_store_no_ip_at_all(client, engine, site):
    sites.update_site_settings(engine, site["site_id"], {"store_ip": False})
    client.application.extensions["cohortly_site_cache"].clear()
    client.post(
        "/v1/batch",
        json={"batch": [track(context={"ip": "203.0.113.9"})]},
        headers=basic(site["write_key"]),
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )
    [row] = stored(engine)
    assert row["ip"] is None
