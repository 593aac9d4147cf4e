"""The contract of site-defined segments end to end: over HTTP against gunicorn, events sent through the
collector, `cohortly rollup` run as the scheduler would; every 422 case answered in the one error shape."""

import os
import subprocess
import sys

import requests

from segmenter.rules.definitions import HOUR
from tests.helpers.segmenter import T0

SHOE_FANS = {
    "name": "shoe_fans",
    "description": "Viewed shoes three times",
    "rule": {"event": "Product Viewed", "where": {"category": "Shoes"}, "count": {"gte": 3}},
}
INVALID = [
    ({"name": "x", "rule": {"event": "A", "within": "2 weeks"}}, "/rule/within"),
    ({"name": "x", "rule": {"all": [{"event": "A"}, {"event": "B", "fact": "order_count"}]}}, "/rule/all/1"),
    ({"name": "x", "rule": {"fact": "order_count", "within": "3d"}}, "/rule/within"),
    ({"name": "x", "rule": {"fact": "nope", "gte": 1}}, "/rule/fact"),
    ({"name": "x", "rule": {"event": "A", "count": {"gte": 1}, "sum": {"property": "p", "gte": 1}}}, "/rule/sum"),
    ({"name": "x", "rule": {"event": "Page Viewed", "where": {"category": "Shoes"}}}, "/rule/where/category"),
    ({"name": "x", "rule": {"segment": "x"}}, "/rule"),
    ({"name": "x", "rule": {"segment": "nope"}}, "/rule/segment"),
    ({"name": "Not A Name", "rule": {"event": "A"}}, "/name"),
    ({"name": "browsers", "rule": {"event": "A"}}, "/name"),
    ({"name": "x", "rule": {"event": "A", "within": "9999d"}}, "/rule/within"),
    ({"name": "x", "rule": {"event": "A", "where": {"p": {"in": []}}}}, "/rule/where/p/in"),
    (
        {"name": "x", "rule": {"event": "A"}, "requires": {"fact": "sessions", "older_than": "1d"}},
        "/requires/older_than",
    ),
    ({"name": "x", "rule": {"event": "A"}, "colour": "red"}, ""),
]


def rollup(database_url, now):
    env = dict(os.environ, COHORTLY_DATABASE_URL=database_url)
    cohortly = os.path.join(os.path.dirname(sys.executable), "cohortly")
    done = subprocess.run([cohortly, "rollup", "--now", now], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def iso(ms):
    from core.times import iso as render

    return render(ms)


def test_the_whole_contract_over_http(live_collector, database_url):
    from segmenter.reads.catalog import configure_site

    site = live_collector.create_site("shop", ["https://shop.example"])
    configure_site(live_collector.engine, site["site_id"], {"min_export_size": "1"})
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {site['api_key']}"
    url = live_collector.url + "/api/v1"
    api.post(url + "/segments", json=SHOE_FANS).raise_for_status()  # before any event: backfilled later
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": anon,
            "properties": {"category": category},
            "timestamp": iso(T0 + n),
            "messageId": f"{anon}-{n}",
        }
        for anon, category, times in (("a1", "Shoes", 3), ("a2", "Shoes", 2), ("a3", "Hats", 3))
        for n in range(times)
    ]
    sent = requests.post(live_collector.url + "/v1/batch", json={"batch": batch}, auth=(site["write_key"], ""))
    assert sent.status_code == 200, sent.text
    rollup(database_url, iso(T0 + HOUR))
    members = api.get(url + "/segments/shoe_fans/members").json()["members"]
    assert [member["profile_id"] for member in members] == ["a:a1"]
    api_site = api.get(url + "/segments/shoe_fans").json()
    assert (api_site["kind"], api_site["version"], api_site["size"]) == ("site", 1, 1)

    preview = api.post(
        url + "/segments/preview", json={"rule": {"event": "Product Viewed", "count": {"gte": 2}}, "name": "shoe_fans"}
    ).json()
    assert (preview["size"], preview["enters"], preview["exits"]) == (3, 2, 0)
    edited = api.put(url + "/segments/shoe_fans", json={"rule": {"event": "Product Viewed", "count": {"gte": 2}}})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    rollup(database_url, iso(T0 + 2 * HOUR))
    assert api.get(url + "/segments/shoe_fans").json()["size"] == preview["size"]
    feed = api.get(url + "/segments/shoe_fans/changes").json()["changes"]
    assert [(c["profile_id"], c["change"], c["reason"].split(":")[0]) for c in feed] == [
        ("a:a1", "enter", "defined (v1)"),
        ("a:a2", "enter", "definition v1 → v2"),
        ("a:a3", "enter", "definition v1 → v2"),
    ]

    versions = api.get(url + "/segments/shoe_fans/versions").json()["versions"]
    assert [(v["version"], v["action"], v["created_by"]) for v in versions] == [
        (1, "create", "api"),
        (2, "update", "api"),
    ]
    assert api.delete(url + "/segments/shoe_fans").json()["action"] == "delete"
    rollup(database_url, iso(T0 + 3 * HOUR))
    assert api.get(url + "/segments/shoe_fans").status_code == 404
    assert len(api.get(url + "/segments/shoe_fans/versions").json()["versions"]) == 3

    for body, where in INVALID:
        refused = api.post(url + "/segments", json=body)
        assert refused.status_code == 422, (body, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "invalid_segment" and where in error["fields"], (body, error)
    for method, path in (("put", "/segments/browsers"), ("delete", "/segments/browsers")):
        built_in = api.request(method.upper(), url + path, json={"rule": {"event": "A"}})
        assert built_in.status_code == 403 and built_in.json()["error"]["code"] == "built_in_segment"
    assert api.post(url + "/segments", data="{", headers={"Content-Type": "application/json"}).status_code == 400
    assert requests.post(url + "/segments", json=SHOE_FANS).status_code == 401
    document = requests.get(url + "/openapi.json").json()
    assert {"SegmentDefinition", "SegmentRule", "SegmentRuleEvent"} <= set(document["components"]["schemas"])
    assert "/api/v1/segments/preview" in document["paths"]
