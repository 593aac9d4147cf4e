"""Site-defined segments over the API, through rollups: create, edit, delete and versions; backfill from stored
events; every way out shows them like a built-in one; every rejection stores nothing."""

import json

import pytest
from sqlalchemy import func, select

from core import schema
from segmenter.rollup.chunks import run_rollup
from segmenter.rollup.job import run_pass
from segmenter.rules.definitions import DAY, HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.segmenter import T0, bearer, identify, sign_in, store, track

SHOE_FANS = {
    "name": "shoe_fans",
    "description": "Viewed shoes three times in two weeks",
    "rule": {"event": "Product Viewed", "where": {"category": "Shoes"}, "within": "14d", "count": {"gte": 3}},
}
changes = schema.MembershipChange.__table__


def shoppers(engine, site_id):
    """anon-1 views shoes 3 times, anon-2 twice, anon-3 hats 3 times; anon-4 orders for 600."""
    rows = []
    for anon, category, times in (("anon-1", "Shoes", 3), ("anon-2", "Shoes", 2), ("anon-3", "Hats", 3)):
        rows += [track("Product Viewed", at=T0 + n, anon=anon, category=category) for n in range(times)]
    rows.append(track("Order Completed", at=T0, anon="anon-4", revenue=600))
    store(engine, site_id, rows)


def members(client, site, name):
    response = client.get(f"/api/v1/segments/{name}/members", headers=bearer(site["api_key"]))
    assert response.status_code == 200, response.json
    return sorted(member["profile_id"] for member in response.json["members"])


def stored(engine):
    """What definitions left in the database: versions and behaviours."""
    with engine.connect() as conn:
        return (
            conn.scalar(select(func.count()).select_from(schema.SegmentVersion.__table__)),
            conn.scalar(select(func.count()).select_from(schema.Behaviour.__table__)),
        )


@pytest.fixture
def small_k(engine, site):
    """k = 1, so that a segment of one member may be listed."""
    from segmenter.reads.catalog import configure_site

    configure_site(engine, site["site_id"], {"min_export_size": "1", "min_segment_size": "1"})
    return site


def test_a_segment_defined_after_the_events_counts_them_at_the_next_rollup(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    created = client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    assert created.status_code == 201, created.json
    assert created.json["version"] == 1 and created.json["created_by"] == "api"
    assert members(client, site, "shoe_fans") == []  # judged at the next rollup, not before
    run_rollup(engine, now=T0 + 2 * HOUR, site_id=site["site_id"])
    assert members(client, site, "shoe_fans") == ["a:anon-1"]
    listed = client.get("/api/v1/segments", headers=bearer(site["api_key"])).json["segments"]
    mine = next(segment for segment in listed if segment["name"] == "shoe_fans")
    assert (mine["kind"], mine["version"], mine["size"]) == ("site", 1, 1)
    assert mine["definition"]["rule"] == SHOE_FANS["rule"]
    with engine.connect() as conn:
        reason = conn.scalar(select(changes.c.reason).where(changes.c.segment == "shoe_fans"))
    assert reason == "defined (v1): Product Viewed where category = Shoes in the last 14d, ≥ 3 times"


def test_an_edit_moves_only_the_affected_members_with_the_version_and_the_time_of_the_edit(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    with engine.connect() as conn:
        before = conn.scalar(select(func.max(changes.c.id)))
    edited = {"rule": {"event": "Product Viewed", "where": {"category": "Shoes"}, "count": {"gte": 2}}}
    response = client.put("/api/v1/segments/shoe_fans", json=edited, headers=bearer(site["api_key"]))
    assert response.status_code == 200 and response.json["version"] == 2
    assert response.json["description"] == SHOE_FANS["description"]  # kept when not sent
    edited_at = _ms(response.json["created_at"])
    run_rollup(engine, now=T0 + 2 * HOUR, site_id=site["site_id"])
    assert members(client, site, "shoe_fans") == ["a:anon-1", "a:anon-2"]
    with engine.connect() as conn:
        made = conn.execute(
            select(changes.c.profile_id, changes.c.change, changes.c.reason, changes.c.at).where(changes.c.id > before)
        ).all()
    assert [(row.profile_id, row.change) for row in made] == [("a:anon-2", "enter")]  # anon-1 stays in place
    assert made[0].reason.startswith("definition v1 → v2: ") and made[0].at == edited_at
    versions = client.get("/api/v1/segments/shoe_fans/versions", headers=bearer(site["api_key"])).json["versions"]
    assert [(v["version"], v["action"]) for v in versions] == [(1, "create"), (2, "update")]
    assert versions[0]["rule"] == SHOE_FANS["rule"] and versions[1]["rule"] == edited["rule"]


def test_deleting_lets_the_members_go_and_keeps_the_history(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    deleted = client.delete("/api/v1/segments/shoe_fans", headers=bearer(site["api_key"]))
    assert deleted.status_code == 200 and deleted.json["action"] == "delete" and deleted.json["version"] == 2
    assert client.get("/api/v1/segments/shoe_fans", headers=bearer(site["api_key"])).status_code == 404
    run_rollup(engine, now=T0 + 2 * HOUR, site_id=site["site_id"])
    with engine.connect() as conn:
        made = conn.execute(
            select(changes.c.profile_id, changes.c.change, changes.c.reason)
            .where(changes.c.segment == "shoe_fans")
            .order_by(changes.c.id)
        ).all()
        left = conn.scalar(select(func.count()).where(schema.Membership.__table__.c.segment == "shoe_fans"))
    assert [tuple(row) for row in made] == [
        ("a:anon-1", "enter", made[0].reason),
        ("a:anon-1", "exit", "segment deleted (v2)"),
    ]
    assert left == 0
    versions = client.get("/api/v1/segments/shoe_fans/versions", headers=bearer(site["api_key"])).json["versions"]
    assert [v["action"] for v in versions] == ["create", "delete"]
    again = client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    assert again.status_code == 201 and again.json["version"] == 3


def test_a_defined_segment_goes_out_every_way_a_built_in_one_does(client, runner, engine, small_k, receiver):
    from core.cli import main

    site = small_k
    hook = outbox.create_webhook(engine, site["site_id"], receiver.url, segments=["shoe_fans"])
    assert hook["segments"] == ["shoe_fans"]
    shoppers(engine, site["site_id"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    run_pass(engine, now=T0 + HOUR, allowed=network.allowed_networks("127.0.0.0/8"))
    auth = bearer(site["api_key"])
    assert members(client, site, "shoe_fans") == ["a:anon-1"]
    ndjson = client.get("/api/v1/segments/shoe_fans/members.ndjson", headers=auth).get_data(as_text=True)
    assert [json.loads(line)["profile_id"] for line in ndjson.splitlines()] == ["a:anon-1"]
    feed = client.get("/api/v1/segments/shoe_fans/changes", headers=auth).json["changes"]
    assert [(c["profile_id"], c["change"]) for c in feed] == [("a:anon-1", "enter")]
    me = client.get("/v1/segments/me", query_string={"anonymousId": "anon-1", "writeKey": site["write_key"]})
    assert "shoe_fans" in me.json["segments"]
    listed = runner.invoke(main, ["segments", "members", "shop", "shoe_fans"])
    assert listed.exit_code == 0 and json.loads(listed.output)["profile_id"] == "a:anon-1"
    assert [body["profile_id"] for body in receiver.accepted() if body["segment"] == "shoe_fans"] == ["a:anon-1"]
    assert sign_in(client, site["api_key"]).status_code == 303
    assert "shoe_fans" in client.get("/dashboard/").get_data(as_text=True)


def test_segments_of_segments_are_judged_in_order_and_identity_links_move_counts(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    auth = bearer(site["api_key"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=auth)
    loyal = {"name": "loyal_shoe_fans", "rule": {"all": [{"segment": "shoe_fans"}, {"fact": "order_count", "gte": 1}]}}
    assert client.post("/api/v1/segments", json=loyal, headers=auth).status_code == 201
    # anon-2 (two shoe views) turns out to be user u1, who viewed shoes once more and ordered
    store(
        engine,
        site["site_id"],
        [
            identify("u1", anon="anon-2", at=T0 + 10),
            track("Product Viewed", at=T0 + 11, user="u1", anon="anon-2", category="Shoes"),
            track("Order Completed", at=T0 + 12, user="u1", anon="anon-2", revenue=10),
        ],
    )
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    assert members(client, site, "shoe_fans") == ["a:anon-1", "u:u1"]
    assert members(client, site, "loyal_shoe_fans") == ["u:u1"]
    in_use = client.delete("/api/v1/segments/shoe_fans", headers=auth)
    assert in_use.status_code == 409 and "loyal_shoe_fans" in in_use.json["error"]["message"]


def test_windows_count_whole_hours_and_time_moves_members_out(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["api_key"]))
    run_rollup(engine, now=T0 + 14 * DAY, site_id=site["site_id"])  # T0's hour is still in the window
    assert members(client, site, "shoe_fans") == ["a:anon-1"]
    run_rollup(engine, now=T0 + 14 * DAY + HOUR, site_id=site["site_id"])
    assert members(client, site, "shoe_fans") == []


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"name": "x", "rule": {"event": "A", "within": "2 weeks"}}, 422, "invalid_segment", "/rule/within"),
        (
            {"name": "x", "rule": {"all": [{"event": "A"}, {"segment": "nope"}]}},
            422,
            "invalid_segment",
            "/rule/all/1/segment",
        ),
        ({"name": "browsers", "rule": {"event": "A"}}, 422, "invalid_segment", "/name"),
        ({"name": "preview", "rule": {"event": "A"}}, 422, "invalid_segment", "/name"),
        ({"rule": {"event": "A"}}, 422, "invalid_segment", ""),
        ({"name": "x", "rule": {"event": "A\u0000"}}, 422, "invalid_request", "json"),
        ("not json", 400, "invalid_json", None),
        ([], 422, "invalid_segment", ""),
    ],
)
def test_a_refused_definition_stores_nothing(client, engine, site, body, status, code, field):
    client.post("/api/v1/segments", json={**SHOE_FANS, "name": "kept"}, headers=bearer(site["api_key"]))
    before = stored(engine)
    headers = {**bearer(site["api_key"]), "Content-Type": "application/json"}
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/api/v1/segments", data=data, headers=headers)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    if field is not None:
        assert field in response.json["error"]["fields"]
    assert stored(engine) == before


def test_refused_changes_store_nothing(client, engine, site):
    auth = bearer(site["api_key"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=auth)
    before = stored(engine)
    deep = '{"name": "deep", "rule": ' + '{"not": ' * 5000 + '{"event": "A"}' + "}" * 5001
    answers = [
        client.post("/api/v1/segments", json=SHOE_FANS, headers=auth),
        client.put("/api/v1/segments/browsers", json={"rule": {"event": "A"}}, headers=auth),
        client.delete("/api/v1/segments/browsers", headers=auth),
        client.put("/api/v1/segments/nope", json={"rule": {"event": "A"}}, headers=auth),
        client.delete("/api/v1/segments/nope", headers=auth),
        client.put("/api/v1/segments/shoe_fans", json={"name": "other", "rule": {"event": "A"}}, headers=auth),
        client.put("/api/v1/segments/shoe_fans", json={"rule": {"segment": "shoe_fans"}}, headers=auth),
        client.post("/api/v1/segments", data=deep, headers={**auth, "Content-Type": "application/json"}),
        client.post("/api/v1/segments", json=SHOE_FANS),
        client.post("/api/v1/segments", json=SHOE_FANS, headers=bearer(site["write_key"])),
    ]
    assert [a.status_code for a in answers] == [409, 403, 403, 404, 404, 422, 422, 422, 401, 403]
    assert all(set(a.json) == {"error"} for a in answers)
    assert stored(engine) == before
    assert client.get("/api/v1/segments/nope/versions", headers=auth).status_code == 404


def _ms(text):
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_preview_gives_the_size_of_the_next_rollup_and_saves_nothing(client, engine, small_k):
    site = small_k
    auth = bearer(site["api_key"])
    shoppers(engine, site["site_id"])
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    before = stored(engine)
    rule = {"event": "Product Viewed", "where": {"category": {"prefix": "Sho"}}, "count": {"gte": 2}}
    answer = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth)
    assert answer.status_code == 200, answer.json
    assert answer.json["size"] == 2 and answer.json["enters"] is None
    assert [member["profile_id"] for member in answer.json["sample"]] == ["a:anon-1", "a:anon-2"]
    assert answer.json["sample"][0]["anonymous_ids"] == ["anon-1"]
    assert stored(engine) == before  # the behaviour it counted for the preview is not kept
    client.post("/api/v1/segments", json={"name": "shoe_browsers", "rule": rule}, headers=auth)
    run_rollup(engine, now=T0 + 2 * HOUR, site_id=site["site_id"])
    assert len(members(client, site, "shoe_browsers")) == answer.json["size"]


def test_a_preview_against_a_segment_counts_its_enters_and_exits(client, engine, small_k):
    site = small_k
    auth = bearer(site["api_key"])
    shoppers(engine, site["site_id"])
    client.post("/api/v1/segments", json=SHOE_FANS, headers=auth)
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    hats = {"event": "Product Viewed", "where": {"category": "Hats"}, "count": {"gte": 3}}
    answer = client.post("/api/v1/segments/preview", json={"rule": hats, "name": "shoe_fans"}, headers=auth)
    assert (answer.json["size"], answer.json["enters"], answer.json["exits"]) == (1, 1, 1)


def test_a_preview_follows_the_policy_and_refuses_bad_rules(client, engine, site):
    from segmenter.reads.catalog import configure_site

    configure_site(engine, site["site_id"], {"min_export_size": "3"})
    auth = bearer(site["api_key"])
    shoppers(engine, site["site_id"])
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    rule = {"event": "Product Viewed", "where": {"category": "Shoes"}, "count": {"gte": 3}}  # no window: now is today
    answer = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth)
    assert answer.json["size"] == 1 and answer.json["too_small"] is True
    assert answer.json["sample"] == [] and "at least 3" in answer.json["sample_withheld"]
    for body, field in (
        ({"rule": {"event": "A", "within": "soon"}}, "/rule/within"),
        ({"rule": {"event": "A"}, "name": "nope"}, "/name"),
        ({"rule": {"event": "A"}, "extra": 1}, "/extra"),
        ({}, ""),
    ):
        refused = client.post("/api/v1/segments/preview", json=body, headers=auth)
        assert refused.status_code == 422 and field in refused.json["error"]["fields"], refused.json


def test_the_cli_defines_previews_lists_versions_and_deletes(runner, engine, small_k, tmp_path):
    from core.cli import main

    shoppers(engine, small_k["site_id"])
    run_rollup(engine, now=T0 + HOUR, site_id=small_k["site_id"])
    path = tmp_path / "shoe_fans.json"
    unwindowed = {**SHOE_FANS, "rule": {**SHOE_FANS["rule"], "within": None}}
    del unwindowed["rule"]["within"]
    path.write_text(json.dumps(unwindowed))
    previewed = runner.invoke(main, ["segments", "preview", "shop", "--file", str(path)])
    assert previewed.exit_code == 0, previewed.output
    assert json.loads(previewed.output)["size"] == 1
    created = runner.invoke(main, ["segments", "create", "shop", "--file", str(path)])
    assert created.exit_code == 0 and json.loads(created.output)["version"] == 1
    again = runner.invoke(main, ["segments", "create", "shop", "--file", str(path)])
    assert again.exit_code == 1 and "exists already" in again.output
    path.write_text(json.dumps({"rule": {"event": "A", "within": "soon"}}))
    bad = runner.invoke(main, ["segments", "update", "shop", "shoe_fans", "--file", str(path)])
    assert bad.exit_code == 1 and "/rule/within: Not a duration" in bad.output
    path.write_text(json.dumps({"rule": {"event": "Product Viewed"}}))
    updated = runner.invoke(main, ["segments", "update", "shop", "shoe_fans", "--file", str(path)])
    assert updated.exit_code == 0 and json.loads(updated.output)["created_by"] == "cli"
    compared = runner.invoke(main, ["segments", "preview", "shop", "--file", str(path), "--against", "shoe_fans"])
    assert json.loads(compared.output)["enters"] == 3  # no rollup since it was defined: no members yet
    assert runner.invoke(main, ["segments", "delete", "shop", "shoe_fans"]).exit_code == 0
    listed = runner.invoke(main, ["segments", "versions", "shop", "shoe_fans"])
    assert [json.loads(line)["action"] for line in listed.output.splitlines()] == ["create", "update", "delete"]
    built_in = runner.invoke(main, ["segments", "delete", "shop", "browsers"])
    assert built_in.exit_code == 1 and "built in" in built_in.output
    path.write_text("{not json")
    assert "is not JSON" in runner.invoke(main, ["segments", "create", "shop", "--file", str(path)]).output


def test_a_site_keeps_at_most_max_segments_of_its_own(client, engine, site, monkeypatch):
    from segmenter import site_segments

    monkeypatch.setattr(site_segments, "MAX_SEGMENTS", 2)
    auth = bearer(site["api_key"])
    for name in ("one", "two"):
        assert (
            client.post("/api/v1/segments", json={"name": name, "rule": {"event": "A"}}, headers=auth).status_code
            == 201
        )
    before = stored(engine)
    third = client.post("/api/v1/segments", json={"name": "three", "rule": {"event": "B"}}, headers=auth)
    assert third.status_code == 409 and third.json["error"]["code"] == "too_many_segments"
    assert stored(engine) == before
    client.delete("/api/v1/segments/one", headers=auth)
    assert (
        client.post("/api/v1/segments", json={"name": "three", "rule": {"event": "B"}}, headers=auth).status_code == 201
    )


def test_a_members_reason_names_the_clauses_that_hold(client, engine, small_k):
    site = small_k
    shoppers(engine, site["site_id"])
    rule = {
        "all": [
            {"fact": "event_count", "gte": 1},
            {
                "any": [
                    {"event": "Order Completed", "sum": {"property": "revenue", "gte": 500}},
                    {"event": "Checkout Started"},
                ]
            },
        ]
    }
    client.post("/api/v1/segments", json={"name": "spenders", "rule": rule}, headers=bearer(site["api_key"]))
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    with engine.connect() as conn:
        reason = conn.scalar(select(changes.c.reason).where(changes.c.segment == "spenders"))
    assert reason == "defined (v1): event_count ≥ 1; sum of revenue over Order Completed ≥ 500"
