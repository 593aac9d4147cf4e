"""One policy for every way out (issue #11): API member pages, exports (API and CLI), the changes feed, CLI members,
webhooks and the dashboard's recent changes agree under `require_consent` and `min_export_size` (k)."""

import csv
import html
import io
import json
import re

import pytest
from sqlalchemy import select

from core import schema
from core.cli import main
from segmenter.reads.catalog import configure_site
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.segmenter import T0, form_token, identify, sign_in, store, track

NOW = T0 + 2 * HOUR


def bearer(site):
    return {"Authorization": f"Bearer {site['api_key']}"}


@pytest.fixture
def shoppers(engine, site, receiver):
    """`yes` (consents) and `no` (refused) both browse and cart; a webhook wants every change. Not rolled up."""
    outbox.create_webhook(engine, site["site_id"], receiver.url)
    rows = []
    for person, consent in (("yes", True), ("no", False)):
        rows += [
            identify(person, anon=f"a-{person}", at=T0, email=f"{person}@example.com", marketing_consent=consent),
            track("Product Viewed", at=T0 + 1, anon=f"a-{person}", product_id="p1", name="Shoe"),
            track("Product Viewed", at=T0 + 2, anon=f"a-{person}", product_id="p2", name="Hat"),
        ]
    store(engine, site["site_id"], rows)
    return site


def every_way_out(client, runner, engine, site, segment="browsers"):
    """{way out: the profile ids it shows, or "refused"}."""
    seen = {}

    def api(path):
        response = client.get(f"/api/v1/segments/{segment}{path}", headers=bearer(site))
        if response.status_code == 403:
            assert response.json["error"]["code"] == "segment_too_small"
            return "refused"
        assert response.status_code == 200, response.json
        return response

    members = api("/members")
    seen["api members"] = members if members == "refused" else {m["profile_id"] for m in members.json["members"]}
    ndjson = api("/members.ndjson")
    seen["api ndjson"] = (
        ndjson
        if ndjson == "refused"
        else {json.loads(line)["profile_id"] for line in ndjson.get_data(as_text=True).splitlines()}
    )
    table = api("/members.csv")
    seen["api csv"] = (
        table
        if table == "refused"
        else {row["profile_id"] for row in csv.DictReader(io.StringIO(table.get_data(as_text=True)))}
    )
    feed = api("/changes")
    seen["changes feed"] = feed if feed == "refused" else {c["profile_id"] for c in feed.json["changes"]}

    def cli(*args):
        result = runner.invoke(main, list(args))
        if result.exit_code == 1 and "this site lists segments of at least" in result.output:
            return "refused"
        assert result.exit_code == 0, result.output
        return result.output

    listed = cli("segments", "members", "shop", segment)
    seen["cli members"] = (
        listed if listed == "refused" else {json.loads(line)["profile_id"] for line in listed.splitlines()}
    )
    exported = cli("segments", "export", segment, "--site", "shop", "--format", "csv")
    seen["cli csv"] = (
        exported if exported == "refused" else {row["profile_id"] for row in csv.DictReader(io.StringIO(exported))}
    )

    # The dashboard page itself, signed in: the recent changes it shows for the segment.
    assert sign_in(client, site["api_key"]).status_code == 303
    page = client.get("/dashboard/").get_data(as_text=True)
    section = page.split('<section id="changes">', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<td><code>([^<]+)</code></td><td>([^<]+)</td>", section)
    seen["dashboard"] = {html.unescape(profile) for profile, shown in rows if shown == segment}
    client.post("/dashboard/logout", data={"csrf_token": form_token(page)})
    return seen


def webhook_outcome(engine, receiver, segment="browsers"):
    """(profile ids delivered, {profile id: skip reason}) of the segment's changes."""
    outbox.deliver(engine, NOW, network.allowed_networks("127.0.0.0/8"))  # the receiver is on this host
    deliveries, changes = schema.WebhookDelivery.__table__, schema.MembershipChange.__table__
    with engine.connect() as conn:
        skipped = dict(
            conn.execute(
                select(changes.c.profile_id, deliveries.c.last_error)
                .join(changes, changes.c.id == deliveries.c.change_id)
                .where(deliveries.c.status == "skipped", changes.c.segment == segment)
            ).all()
        )
    return {body["profile_id"] for body in receiver.accepted() if body["segment"] == segment}, skipped


def test_without_consent_no_way_out_shows_the_profile(client, runner, engine, shoppers, receiver):
    configure_site(engine, shoppers["site_id"], {"require_consent": "true"})
    run_rollup(engine, now=NOW, site_id=shoppers["site_id"])
    seen = every_way_out(client, runner, engine, shoppers)
    assert seen == dict.fromkeys(seen, {"u:yes"}), seen
    feed = client.get("/api/v1/segments/browsers/changes", headers=bearer(shoppers)).json
    assert "no@example.com" not in json.dumps(feed) and "a-no" not in json.dumps(feed)
    assert feed["next_cursor"] >= max(c["id"] for c in feed["changes"])  # the cursor moves past left-out ones
    delivered, skipped = webhook_outcome(engine, receiver)
    assert delivered == {"u:yes"} and skipped == {"u:no": "no marketing consent (the site requires it)"}


def test_under_k_every_way_out_refuses(client, runner, engine, shoppers, receiver):
    configure_site(engine, shoppers["site_id"], {"min_export_size": "3"})
    run_rollup(engine, now=NOW, site_id=shoppers["site_id"])
    seen = every_way_out(client, runner, engine, shoppers)
    assert seen == {**dict.fromkeys(seen, "refused"), "dashboard": set()}, seen
    delivered, skipped = webhook_outcome(engine, receiver)
    assert delivered == set() and set(skipped.values()) == {"segment under min_export_size (3)"}
    assert set(skipped) == {"u:yes", "u:no"}


def test_at_k_and_without_consent_rules_every_way_out_shows_everyone(client, runner, engine, shoppers, receiver):
    configure_site(engine, shoppers["site_id"], {"min_export_size": "2"})
    run_rollup(engine, now=NOW, site_id=shoppers["site_id"])
    seen = every_way_out(client, runner, engine, shoppers)
    assert seen == dict.fromkeys(seen, {"u:yes", "u:no"}), seen
    assert webhook_outcome(engine, receiver) == ({"u:yes", "u:no"}, {})


def test_the_feed_of_an_emptied_segment_under_k_is_refused_but_its_empty_member_list_is_not(client, engine, site):
    store(engine, site["site_id"], [track("Product Viewed", at=T0 + n, anon="a1", product_id=f"p{n}") for n in (1, 2)])
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    store(engine, site["site_id"], [track("Product Added", at=NOW + 1, anon="a1", product_id="p1")])
    run_rollup(engine, now=NOW + 2, site_id=site["site_id"])  # a1 leaves browsers: it is empty, its feed is not
    configure_site(engine, site["site_id"], {"min_export_size": "2"})
    assert client.get("/api/v1/segments/browsers/members", headers=bearer(site)).json["members"] == []
    feed = client.get("/api/v1/segments/browsers/changes", headers=bearer(site))
    assert feed.status_code == 403 and feed.json["error"]["code"] == "segment_too_small"
    configure_site(engine, site["site_id"], {"min_export_size": "1"})
    changes = client.get("/api/v1/segments/browsers/changes", headers=bearer(site)).json["changes"]
    assert [c["change"] for c in changes] == ["enter", "exit"]
