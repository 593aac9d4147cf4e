"""The token buckets: under threads (gunicorn's gthread workers) a limit far above the load never refuses;
one client cannot spend a write key's budget for everyone; the buckets of many clients stay bounded.

Found by bench/ingest: with the clock read before taking the lock, a thread could refill a negative amount
(its `now` older than the bucket's last update) and answer a spurious 429.
"""

import threading

import pytest

from collector import store
from core.app import create_app
from core.ratelimit import RateLimiter, client_of
from tests.helpers.collector import basic, track


def test_a_limit_far_above_the_load_never_refuses_under_threads():
    limiter = RateLimiter(rate=10**9, burst=2000)
    refused = []

    def take():
        refused.extend(1 for _ in range(20_000) if not limiter.allow("key"))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert refused == []


def test_buckets_are_bounded_and_pruning_keeps_busy_clients():
    now = [0.0]
    limiter = RateLimiter(rate=1, burst=2, clock=lambda: now[0], max_keys=10)
    for i in range(9):
        limiter.allow(f"idle-{i}")
    now[0] = 1.9
    assert limiter.allow("busy") and limiter.allow("busy") and not limiter.allow("busy")
    now[0] = 2.0  # the idle buckets have refilled (the same as none); "busy" has not
    assert limiter.allow("newcomer")
    assert set(limiter.buckets) == {"busy", "newcomer"}
    assert not limiter.allow("busy")
    for i in range(10_000):
        limiter.allow(f"flood-{i}")
    assert len(limiter.buckets) <= 10


@pytest.mark.parametrize(
    "address, client",
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),  # one host usually holds a whole /64
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::"),
        ("not an address", "not an address"),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_64(address, client):
    assert client_of(address) == client


def per_client_app(database_url, **config):
    return create_app(
        {
            "DATABASE_URL": database_url,
            "RATE_LIMIT": 0.001,
            "RATE_BURST": 10,
            "CLIENT_RATE_LIMIT": 0.001,
            "CLIENT_RATE_BURST": 3,
            **config,
        }
    )


def exhaust(client, path, **kwargs):
    """Requests from one client until it gets 429 (at most 30); returns how many it got through."""
    for sent in range(30):
        response = client.get(path, **kwargs) if "segments" in path else client.post(path, **kwargs)
        if response.status_code == 429:
            assert response.get_json()["error"]["code"] == "rate_limited"
            assert response.headers["Retry-After"]
            return sent
        assert response.status_code == 200, response.data
    raise AssertionError("never limited")


def test_one_client_spending_its_budget_leaves_the_write_key_to_others(database_url, site):
    app = per_client_app(database_url)
    client = app.test_client()
    # /v1/segments/me reads use the write key's limiter too: one client reading in a loop.
    me = f"/v1/segments/me?writeKey={site['write_key']}&anonymousId=a"
    assert exhaust(client, me, environ_base={"REMOTE_ADDR": "198.51.100.7"}) == 3
    for other in ("198.51.100.8", "2001:db8::5"):
        response = client.post(
            "/v1/batch",
            json={"batch": [track()]},
            headers=basic(site["write_key"]),
            environ_base={"REMOTE_ADDR": other},
        )
        assert response.status_code == 200, response.data
    assert store.count_events(app.extensions["cohortly_engine"]) == 2
    app.extensions["cohortly_engine"].dispose()


def test_clients_behind_a_trusted_proxy_are_told_apart_by_x_forwarded_for(database_url, site):
    app = per_client_app(database_url, TRUSTED_PROXIES=1)
    client = app.test_client()
    body = {"json": {"batch": [track()]}, "headers": basic(site["write_key"])}
    first = {**body, "headers": {**body["headers"], "X-Forwarded-For": "203.0.113.1"}}
    assert exhaust(client, "/v1/batch", **first) == 3
    second = {**body, "headers": {**body["headers"], "X-Forwarded-For": "203.0.113.2"}}
    assert client.post("/v1/batch", **second).status_code == 200
    assert store.count_events(app.extensions["cohortly_engine"]) == 4
    app.extensions["cohortly_engine"].dispose()


def test_the_write_key_limit_still_holds_over_many_clients(database_url, site):
    app = per_client_app(database_url)
    client = app.test_client()
    statuses = [
        client.post(
            "/v1/batch",
            json={"batch": [track()]},
            headers=basic(site["write_key"]),
            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"},
        ).status_code
        for i in range(12)
    ]
    assert statuses == [200] * 10 + [429] * 2
    app.extensions["cohortly_engine"].dispose()
