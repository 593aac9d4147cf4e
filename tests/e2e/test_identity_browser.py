"""Identity verification through Cohortly's snippet in headless Chromium (issue #11): the page passes the hash its
server made as `traits.userHash` of `identify`; a visitor who claims someone else's user id links nothing."""

import hashlib
import hmac

from sqlalchemy import select

from core import schema
from segmenter.reads import catalog
from segmenter.rollup.chunks import run_rollup

VICTIM = "vic@example.com"


def test_a_signed_identify_links_and_a_claimed_one_does_not(tracked):
    engine = tracked.collector.engine
    secret = catalog.identity_secret(engine, tracked.site["site_id"])  # before the site's first request: not cached
    user_hash = hmac.new(secret.encode(), VICTIM.encode(), hashlib.sha256).hexdigest()

    victim = tracked.new_page()
    victim.goto(tracked.server.url("/index.html"))
    victim.evaluate(
        f"cohortly.identify('{VICTIM}', {{email: '{VICTIM}', userHash: '{user_hash}'}});cohortly.track('Victim after')"
    )
    attacker = tracked.new_page()
    attacker.goto(tracked.server.url("/index.html"))
    attacker.evaluate(f"cohortly.identify('{VICTIM}', {{email: 'evil@example.com'}}); cohortly.track('Evil after')")
    tracked.wait_for_event("Victim after")
    tracked.wait_for_event("Evil after")
    victim_anon = victim.evaluate("localStorage['cohortly.a']")
    attacker_anon = attacker.evaluate("localStorage['cohortly.a']")

    identifies = {e["anonymous_id"]: e for e in tracked.events(type="identify")}
    assert (identifies[victim_anon]["user_id"], identifies[victim_anon]["user_verified"]) == (VICTIM, True)
    assert identifies[victim_anon]["traits"] == {"email": VICTIM}  # the hash is not kept
    assert (identifies[attacker_anon]["user_id"], identifies[attacker_anon]["traits"]) == (None, None)
    # Later messages carry userId without a hash: kept anonymous, they fold through the verified link.
    assert {e["user_id"] for e in tracked.events(type="track")} == {None}

    (summary,) = run_rollup(engine, site_id=tracked.site["site_id"])
    assert summary.status == "done", summary.error
    identities = schema.Identity.__table__
    with engine.connect() as conn:
        links = conn.execute(
            select(identities.c.anonymous_id, identities.c.user_id, identities.c.verified).where(
                identities.c.site_id == tracked.site["site_id"]
            )
        ).all()
    assert [(anon, user, bool(ok)) for anon, user, ok in links] == [(victim_anon, VICTIM, True)]
