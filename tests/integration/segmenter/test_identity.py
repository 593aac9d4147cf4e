"""Identity verification (issue #11): with the public write key, nobody takes over another person's profile.

The attack: a visitor identifies their own anonymous id with someone else's user id (an email). Through the
real ingestion routes, the real rollup and the real API, on SQLite and PostgreSQL.
"""

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from core import schema, sites
from core.cli import main
from core.schema import Event
from segmenter import privacy
from segmenter.reads.catalog import configure_site
from segmenter.rollup.chunks import run_rollup
from tests.helpers.collector import basic
from tests.helpers.segmenter import T0, rows_naming

VICTIM, EVIL = "vic@example.com", "evil@example.com"
NOW = T0 + 3_600_000
identities = schema.Identity.__table__
facts = schema.ProfileFact.__table__


def at(ms):
    from segmenter.serving.schemas import iso

    return iso(ms)


def signed(secret, user_id):
    """What the site's server computes: hex HMAC-SHA256 of the userId under the identity secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def send(client, site, *messages):
    response = client.post("/v1/batch", json={"batch": list(messages)}, headers=basic(site["write_key"]))
    assert response.status_code == 200, response.json
    return response.json


def views(anon, user=None, start=0, **extra):
    """Two product views (enough for `browsers`) by `anon`."""
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": anon,
            "userId": user,
            "properties": {"product_id": f"p{n}"},
            "timestamp": at(T0 + start + n),
            **extra,
        }
        for n in (1, 2)
    ]


def victim_signs_in(client, site, secret):
    """The victim identifies with a valid userHash (context, as Segment SDKs send it), browses, is rolled up."""
    send(
        client,
        site,
        {
            "type": "identify",
            "anonymousId": "vic-anon",
            "userId": VICTIM,
            "timestamp": at(T0),
            "traits": {"email": VICTIM, "marketing_consent": True},
            "context": {"userHash": signed(secret, VICTIM) if secret else "0" * 64},
        },
        *views("vic-anon", VICTIM),
    )
    run_rollup(client.application.extensions["cohortly_engine"], now=NOW)


def attacker_claims_the_victim(client, site):
    """The attack: the attacker's own anonymous id, the victim's user id, the attacker's email; no valid hash."""
    return send(
        client,
        site,
        {
            "type": "identify",
            "anonymousId": "evil-anon",
            "userId": VICTIM,
            "timestamp": at(T0 + 100),
            "traits": {"email": EVIL},
            "context": {"userHash": "f" * 64, "traits": {"email": EVIL}},
        },
        *views("evil-anon", VICTIM, start=200),
    )


def me(client, site, anon):
    response = client.get("/v1/segments/me", query_string={"anonymousId": anon, "writeKey": site["write_key"]})
    assert response.status_code == 200
    return response.json["segments"]


def bearer(site):
    return {"Authorization": f"Bearer {site['api_key']}"}


def victim_profile(engine, site):
    with engine.connect() as conn:
        return (
            conn.execute(select(facts).where(facts.c.site_id == site["site_id"], facts.c.profile_id == f"u:{VICTIM}"))
            .mappings()
            .one()
        )


def links(engine):
    with engine.connect() as conn:
        return {row.anonymous_id: (row.user_id, bool(row.verified)) for row in conn.execute(select(identities))}


def turn_on(runner, site, client=None):
    """`cohortly sites identity-secret SITE`; the secret it prints. The app's site cache is emptied (a real
    worker picks the change up within SITE_CACHE_SECONDS)."""
    result = runner.invoke(main, ["sites", "identity-secret", site["name"]])
    assert result.exit_code == 0, result.output
    if client is not None:
        client.application.extensions["cohortly_site_cache"].clear()
    return result.output.splitlines()[0]


def test_the_cli_makes_keeps_and_rotates_the_secret_and_turns_verification_on(runner, engine, site):
    secret = turn_on(runner, site)
    assert secret.startswith("ids_") and len(secret) > 40
    found = sites.find_site(engine, site_id=site["site_id"])
    assert found["identity_secret"] == secret and found["settings"]["identity_verification"] is True
    assert turn_on(runner, site) == secret  # shown again, unchanged
    rotated = runner.invoke(main, ["sites", "identity-secret", "shop", "--rotate"])
    assert rotated.exit_code == 0 and rotated.output.splitlines()[0] not in ("", secret)
    assert secret not in json.dumps(sites.list_sites(engine))  # `sites list` never shows it


def test_with_verification_on_the_takeover_fails(client, engine, site, runner):
    secret = turn_on(runner, site)
    victim_signs_in(client, site, secret)
    before = victim_profile(engine, site)
    assert links(engine) == {"vic-anon": (VICTIM, True)}  # a correctly verified identify links
    assert set(me(client, site, "vic-anon")) >= {"browsers"}

    answer = attacker_claims_the_victim(client, site)
    assert (answer["accepted"], answer["rejected"]) == (3, [])  # stored, as anonymous messages
    run_rollup(engine, now=NOW)

    assert links(engine) == {"vic-anon": (VICTIM, True)}  # no link
    with engine.connect() as conn:
        stored = conn.execute(select(Event.__table__).where(Event.anonymous_id == "evil-anon")).mappings().all()
    assert [(row["user_id"], row["previous_id"], row["traits"], row["user_verified"]) for row in stored] == [
        (None, None, None, False)
    ] * 3
    assert all(row["context"] is None for row in stored)  # no hash, no context.traits
    after = victim_profile(engine, site)
    assert (after["email"], after["traits"], after["product_views"]) == (VICTIM, before["traits"], 2)  # no change
    assert EVIL not in json.dumps(rows_naming(engine, (VICTIM,)), default=str)
    assert "browsers" in me(client, site, "evil-anon")  # their own two views: their own anonymous profile
    assert "a:evil-anon" in [
        m["profile_id"] for m in client.get("/api/v1/segments/browsers/members", headers=bearer(site)).json["members"]
    ]

    exported = client.get("/api/v1/profiles/evil-anon/export", headers=bearer(site)).get_data(as_text=True)
    assert exported and VICTIM not in exported
    erased = client.delete("/api/v1/profiles/evil-anon", headers=bearer(site)).json["erased"]
    assert erased["events"] == 3 and erased["identities"] == 0
    assert victim_profile(engine, site) == after  # the victim is untouched
    assert set(me(client, site, "vic-anon")) >= {"browsers"}


def test_without_an_anonymous_id_an_unverified_user_id_is_rejected_and_nothing_stored(client, engine, site, runner):
    turn_on(runner, site)
    response = client.post(
        "/v1/identify", json={"userId": VICTIM, "traits": {"email": EVIL}}, headers=basic(site["write_key"])
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "unverified_user"
    in_batch = client.post(
        "/v1/batch",
        headers=basic(site["write_key"]),
        json={"batch": [{"type": "track", "event": "E", "userId": VICTIM, "context": {"userHash": "nope"}}]},
    ).json
    assert in_batch["accepted"] == 0 and in_batch["rejected"][0]["code"] == "unverified_user"
    with engine.connect() as conn:
        assert conn.execute(select(Event.__table__)).all() == []


def test_a_server_side_message_with_a_valid_hash_and_no_anonymous_id_is_kept(client, engine, site, runner):
    secret = turn_on(runner, site)
    send(
        client,
        site,
        {
            "type": "track",
            "event": "Order Completed",
            "userId": VICTIM,
            "properties": {"revenue": 5},
            "context": {"userHash": signed(secret, VICTIM).upper()},
        },
    )
    with engine.connect() as conn:
        [row] = conn.execute(select(Event.__table__)).mappings().all()
    assert (row["user_id"], row["user_verified"], row["context"]) == (VICTIM, True, None)


def test_the_snippet_sends_the_hash_in_identify_traits_and_it_is_not_kept(client, engine, site, runner):
    secret = turn_on(runner, site)
    send(
        client,
        site,
        {
            "type": "identify",
            "anonymousId": "vic-anon",
            "userId": VICTIM,
            "traits": {"email": VICTIM, "userHash": signed(secret, VICTIM)},
        },
    )
    run_rollup(engine, now=NOW)
    assert links(engine) == {"vic-anon": (VICTIM, True)}
    assert victim_profile(engine, site)["traits"] == {"email": VICTIM}
    assert rows_naming(engine, (signed(secret, VICTIM),)) == {}


def test_a_hash_made_with_a_rotated_secret_no_longer_verifies(client, engine, site, runner):
    old = turn_on(runner, site)
    assert runner.invoke(main, ["sites", "identity-secret", "shop", "--rotate"]).exit_code == 0
    send(
        client,
        site,
        {"type": "identify", "anonymousId": "vic-anon", "userId": VICTIM, "context": {"userHash": signed(old, VICTIM)}},
    )
    run_rollup(engine, now=NOW)
    assert links(engine) == {}


def test_with_verification_off_it_works_as_documented(client, engine, site):
    """Off (the default), anyone may link any user id: the link is made, the traits change, as PRIVACY.md says;
    but the link is unverified, so the write key and requests by the attacker's anonymous id stop at it."""
    victim_signs_in(client, site, None)
    attacker_claims_the_victim(client, site)
    run_rollup(client.application.extensions["cohortly_engine"], now=NOW)
    assert links(engine) == {"vic-anon": (VICTIM, False), "evil-anon": (VICTIM, False)}
    assert victim_profile(engine, site)["email"] == EVIL  # documented: the latest identify's traits win
    assert me(client, site, "evil-anon") == [] and me(client, site, "vic-anon") == []  # unverified: not followed

    exported = [
        json.loads(line)
        for line in client.get("/api/v1/profiles/evil-anon/export", headers=bearer(site))
        .get_data(as_text=True)
        .splitlines()
    ]
    assert {record["table"] for record in exported} == {"events", "identities"}
    assert {record["row"]["anonymous_id"] for record in exported} == {"evil-anon"}  # its own rows only
    assert privacy.erase_profile(engine, site["site_id"], "a:evil-anon", NOW)["events"] == 3
    with engine.connect() as conn:
        left = conn.execute(select(Event.anonymous_id).where(Event.site_id == site["site_id"])).scalars().all()
    assert sorted(set(left)) == ["vic-anon"] and len(left) == 3  # the victim's events all stay
    assert victim_profile(engine, site)["product_views"] == 4  # documented: what was folded into it stays


def test_a_link_made_before_verification_is_verified_by_a_later_signed_identify(client, engine, site, runner):
    victim_signs_in(client, site, None)  # verification off: an unverified link
    assert me(client, site, "vic-anon") == []
    secret = turn_on(runner, site, client)
    send(
        client,
        site,
        {
            "type": "identify",
            "anonymousId": "vic-anon",
            "userId": VICTIM,
            "timestamp": at(T0 + 5000),
            "context": {"userHash": signed(secret, VICTIM)},
        },
    )
    run_rollup(engine, now=NOW)
    assert links(engine) == {"vic-anon": (VICTIM, True)}
    assert "browsers" in me(client, site, "vic-anon")
    exported = client.get("/api/v1/profiles/vic-anon/export", headers=bearer(site)).get_data(as_text=True)
    assert f'"profile_id": "u:{VICTIM}"' in exported  # verified: the request follows the link


@pytest.mark.parametrize("value", ["true", "false"])
def test_verification_is_a_site_setting(engine, site, value):
    configure_site(engine, site["site_id"], {"identity_verification": value})
    assert sites.find_site(engine, site_id=site["site_id"])["settings"]["identity_verification"] is (value == "true")
