"""A delivery pass against real receivers: bounded in wall-clock time, fair between sites, and never
sending a change twice when two passes run at once."""

import functools
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select, update

from core import schema, sites
from core.db import make_engine
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.receiver import Trickler
from tests.helpers.segmenter import PASS_SLACK, T0, store, track

NOW = T0 + 2 * HOUR
ALLOWED = network.allowed_networks("127.0.0.0/8")  # the receivers run on this host
deliver = functools.partial(outbox.deliver, allowed=ALLOWED)


@pytest.fixture
def trickler():
    """A running receiver that answers one byte a second and never finishes, stopped after the test."""
    found = Trickler(interval=1.0)
    found.start()
    yield found
    found.stop()


def browse(engine, site_id, anon):
    store(
        engine,
        site_id,
        [
            track("Product Viewed", at=T0, anon=anon, product_id="p1"),
            track("Product Viewed", at=T0 + 1, anon=anon, product_id="p2"),
        ],
    )


def hook_deliveries(engine, hook_id):
    with engine.connect() as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(outbox.deliveries)
                .where(outbox.deliveries.c.webhook_id == hook_id)
                .order_by(outbox.deliveries.c.change_id)
            ).mappings()
        ]


def test_a_trickling_receiver_gets_a_bounded_share_and_the_other_sites_are_served(engine, trickler, receiver):
    slow_site = sites.create_site(engine, "slow", [])
    other_site = sites.create_site(engine, "other", [])
    slow = [outbox.create_webhook(engine, slow_site["site_id"], trickler.url) for _ in range(2)]
    fast = outbox.create_webhook(engine, other_site["site_id"], receiver.url)
    for site in (slow_site, other_site):
        browse(engine, site["site_id"], "anon-1")
        browse(engine, site["site_id"], "anon-2")
    run_rollup(engine, now=NOW)
    budget = 9.0  # each slow webhook gets a third of it at most; the fast one the rest

    started = time.monotonic()
    result = deliver(engine, NOW, budget_seconds=budget)
    took = time.monotonic() - started

    assert took < budget + PASS_SLACK
    assert len(receiver.accepted()) == 4  # the other site's changes all went out in the same pass
    assert result.delivered == 4 and result.failed == 2
    for hook in slow:  # one attempt each, cut by its deadline, recorded as a class, retried later
        first, *rest = hook_deliveries(engine, hook["id"])
        assert (first["status"], first["attempts"], first["last_error"], first["last_status"]) == (
            "pending",
            1,
            "timeout",
            None,
        )
        assert first["next_attempt_at"] > NOW
        assert all(item["attempts"] == 0 and item["next_attempt_at"] >= first["next_attempt_at"] for item in rest)
    assert [d["status"] for d in hook_deliveries(engine, fast["id"])] == ["delivered"] * 4

    trickler.trickle = False  # the receiver recovers
    assert deliver(engine, NOW + HOUR).delivered == 8
    retried = [request for request in trickler.requests if request["X-Cohortly-Attempt"] == "2"]
    assert len(retried) == 2


def test_two_passes_at_once_send_each_change_exactly_once(database_url, engine, receiver):
    site = sites.create_site(engine, "shop", [])
    for _ in range(3):
        outbox.create_webhook(engine, site["site_id"], receiver.url)
    for i in range(6):
        browse(engine, site["site_id"], f"anon-{i}")
    run_rollup(engine, now=NOW)
    receiver.pause = 0.02  # each answer takes a little while, so the passes overlap
    start = threading.Barrier(2)
    results, errors = [], []

    def one_pass():
        own = make_engine(database_url)  # a process of its own, as far as the database can tell
        try:
            start.wait()
            for _ in range(3):
                results.append(deliver(own, NOW))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)
        finally:
            own.dispose()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    deliver(engine, NOW)  # whatever a pass left for later
    sent = Counter(item["headers"]["Idempotency-Key"] for item in receiver.received)
    with engine.connect() as conn:
        queued = conn.execute(select(outbox.deliveries.c.webhook_id, outbox.deliveries.c.change_id)).all()
    assert len(queued) == 3 * 12  # 6 browsers + 6 active, for each of the 3 webhooks
    assert sent == Counter({outbox.idempotency_key(hook, change): 1 for hook, change in queued})
    assert {item["headers"]["X-Cohortly-Attempt"] for item in receiver.received} == {"1"}
    assert sum(result.delivered for result in results) <= len(queued)


def test_a_webhook_leased_by_another_pass_waits_until_the_lease_ends(engine, receiver):
    site = sites.create_site(engine, "shop", [])
    hook = outbox.create_webhook(engine, site["site_id"], receiver.url)
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    table = schema.Webhook.__table__
    wall = int(time.time() * 1000)
    with engine.begin() as conn:
        conn.execute(update(table).values(claimed_by="another", claimed_until=wall + 60_000))
    result = deliver(engine, NOW)
    assert result.busy == [hook["id"]] and receiver.received == []
    with engine.begin() as conn:  # that pass died: its lease runs out
        conn.execute(update(table).values(claimed_until=wall - 1))
    assert deliver(engine, NOW).delivered == 2
    with engine.connect() as conn:
        assert conn.execute(select(table.c.claimed_by, table.c.claimed_until)).one() == (None, None)  # released


def test_cohortly_rollup_is_held_by_a_trickling_receiver_only_boundedly(
    engine, runner, monkeypatch, trickler, receiver
):
    from core.cli import main

    monkeypatch.setenv("COHORTLY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
    site = sites.create_site(engine, "shop", [])
    outbox.create_webhook(engine, site["site_id"], trickler.url)
    outbox.create_webhook(engine, site["site_id"], receiver.url)
    browse(engine, site["site_id"], "anon-1")

    started = time.monotonic()
    result = runner.invoke(main, ["rollup", "--now", "2026-01-05T14:00:00Z"])
    took = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert took < outbox.PASS_BUDGET_SECONDS + PASS_SLACK
    assert "2 enters" in result.output  # the rollup's own report
    assert "webhooks: 2 delivered, 1 failed" in result.output
    assert len(receiver.accepted()) == 2 and len(trickler.requests) == 1


def test_a_bad_allow_setting_is_one_clear_line(engine, runner, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("COHORTLY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/33")
    result = runner.invoke(main, ["rollup"])
    assert result.exit_code == 1
    assert "WEBHOOK_ALLOW_NETWORKS" in result.output and "Traceback" not in result.output
