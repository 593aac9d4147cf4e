"""Profile facts: what each kind of event contributes, sessions, cart, identities, bots."""

import pytest

from segmenter.rules.definitions import DAY, HOUR, MINUTE, SESSION_GAP
from tests.helpers.segmenter import T0, event, facts, identify, page, roll, store, track

LATER = T0 + 30 * DAY


@pytest.fixture
def site_id(site):
    """The test site's id."""
    return site["site_id"]


def test_counts_and_times(engine, site_id):
    store(
        engine,
        site_id,
        [
            page(at=T0 + MINUTE),
            page(at=T0),
            track("Product Viewed", at=T0 + 2 * MINUTE, product_id="p1", name="Boot", category="shoes", price=80),
            track("Order Completed", at=T0 + 3 * MINUTE, revenue=12.34),
            track("Order Completed", at=T0 + 4 * MINUTE, total=10),
        ],
    )
    roll(engine, LATER)
    f = facts(engine, site_id)["a:anon-1"]
    assert (f["first_seen_at"], f["last_seen_at"]) == (T0, T0 + 4 * MINUTE)
    assert (f["event_count"], f["page_views"], f["product_views"]) == (5, 2, 1)
    assert (f["order_count"], f["revenue_cents"]) == (2, 2234)
    assert (f["first_order_at"], f["last_order_at"]) == (T0 + 3 * MINUTE, T0 + 4 * MINUTE)
    assert (f["last_product_id"], f["last_product_name"], f["last_product_price_cents"]) == ("p1", "Boot", 8000)


@pytest.mark.parametrize(("gap", "expected"), [(SESSION_GAP, 1), (SESSION_GAP + 1, 2)])
def test_sessions_split_on_a_gap_longer_than_30_minutes(engine, site_id, gap, expected):
    store(engine, site_id, [page(at=T0), page(at=T0 + gap)])
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["sessions"] == expected


def test_a_late_event_bridges_two_sessions(engine, site_id):
    store(engine, site_id, [page(at=T0), page(at=T0 + 50 * MINUTE)])
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["sessions"] == 2
    store(engine, site_id, [page(at=T0 + 25 * MINUTE)])  # arrives late, in between
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["sessions"] == 1


def test_latest_product_wins_by_time_then_message_id(engine, site_id):
    store(
        engine,
        site_id,
        [
            event("track", "Product Viewed", at=T0, props={"product_id": "b"}, message_id="m-b"),
            event("track", "Product Viewed", at=T0, props={"product_id": "a"}, message_id="m-a"),
            event("track", "Product Viewed", at=T0 - 1, props={"product_id": "c"}, message_id="m-z"),
        ],
    )
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["last_product_id"] == "b"


def test_top_categories_rank_by_views_then_recency(engine, site_id):
    views = [("hats", 1), ("shoes", 2), ("shoes", 3), ("bags", 4), ("socks", 5)]
    store(engine, site_id, [track("Product Viewed", at=T0 + n, product_id=str(n), category=c) for c, n in views])
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["top_categories"] == ["shoes", "socks", "bags"]


def test_cart_is_the_latest_add_or_remove_per_product_after_the_last_order(engine, site_id):
    store(
        engine,
        site_id,
        [
            track("Product Added", at=T0, product_id="a", price=10, quantity=2),
            track("Product Added", at=T0 + 1, product_id="b", price=5),
            track("Product Removed", at=T0 + 2, product_id="b"),
            track("Product Added", at=T0 + 3, product_id="c", price=1.5),
        ],
    )
    roll(engine, LATER)
    f = facts(engine, site_id)["a:anon-1"]
    assert (f["cart_items"], f["cart_value_cents"], f["last_cart_add_at"]) == (2, 2150, T0 + 3)
    store(
        engine,
        site_id,
        [track("Order Completed", at=T0 + 4), track("Product Added", at=T0 + 5, product_id="d", price=2)],
    )
    roll(engine, LATER)
    f = facts(engine, site_id)["a:anon-1"]
    assert (f["cart_items"], f["cart_value_cents"]) == (1, 200)
    store(engine, site_id, [track("Product Removed", at=T0 + 1, product_id="d")])  # late, but older: no effect
    roll(engine, LATER)
    assert facts(engine, site_id)["a:anon-1"]["cart_items"] == 1


def test_odd_property_values_are_ignored_not_fatal(engine, site_id):
    store(
        engine,
        site_id,
        [
            track("Product Added", at=T0, product_id="a", price="$10", quantity="two"),
            track("Product Added", at=T0 + 1, product_id={"x": 1}, price=1e300),
            track("Order Completed", at=T0 + 2, revenue=[1]),
        ],
    )
    summary = roll(engine, LATER)
    f = facts(engine, site_id)["a:anon-1"]
    assert summary.events_folded == 3
    assert (f["cart_items"], f["cart_value_cents"], f["order_count"], f["revenue_cents"]) == (0, 0, 1, 0)


def test_email_events_count_but_do_not_make_a_profile_seen(engine, site_id):
    store(
        engine,
        site_id,
        [
            track("Email Delivered", at=T0, anon=None, user="u1"),
            track("Email Opened", at=T0 + DAY, anon=None, user="u1"),
            track("Email Link Clicked", at=T0 + 2 * DAY, anon=None, user="u1"),
        ],
    )
    roll(engine, LATER)
    f = facts(engine, site_id)["u:u1"]
    assert (f["email_opens"], f["email_clicks"]) == (1, 1)
    assert (f["first_email_at"], f["last_email_engaged_at"]) == (T0, T0 + 2 * DAY)
    assert (f["last_seen_at"], f["event_count"], f["sessions"]) == (None, 0, 0)


def test_bots_are_left_out(engine, site_id):
    store(engine, site_id, [page(at=T0, anon="bot-1"), event("page", anon="bot-2", is_bot=True), page(anon="human")])
    store(engine, site_id, [event("track", "Product Viewed", anon="human", is_bot=True)])
    summary = roll(engine, LATER)
    assert set(facts(engine, site_id)) == {"a:bot-1", "a:human"}
    assert facts(engine, site_id)["a:human"]["event_count"] == 1
    assert summary.events_folded == 4


def test_identify_after_the_history_joins_it_to_the_user(engine, site_id):
    store(engine, site_id, [page(at=T0), track("Product Added", at=T0 + 1, product_id="p", price=3)])
    roll(engine, LATER)
    assert set(facts(engine, site_id)) == {"a:anon-1"}
    store(
        engine,
        site_id,
        [
            identify("alice", at=T0 + 2, email="alice@example.com", plan="pro"),
            page(at=T0 + 3, anon="anon-9", user="alice"),
        ],
    )
    summary = roll(engine, LATER)
    found = facts(engine, site_id)
    assert set(found) == {"u:alice"}
    alice = found["u:alice"]
    assert (alice["user_id"], alice["email"], alice["traits"]) == (
        "alice",
        "alice@example.com",
        {"email": "alice@example.com", "plan": "pro"},
    )
    assert (alice["event_count"], alice["cart_items"], alice["first_seen_at"]) == (3, 1, T0)
    assert summary.events_read == 2 + 2  # the new events, and anon-1's history read once to rebuild alice


def test_the_earliest_link_wins_even_when_it_arrives_last(engine, site_id):
    store(engine, site_id, [page(at=T0), identify("bob", at=T0 + 10)])
    roll(engine, LATER)
    assert facts(engine, site_id)["u:bob"]["event_count"] == 1
    store(engine, site_id, [identify("carol", at=T0 + 5)])  # an earlier identify of the same browser
    roll(engine, LATER)
    found = facts(engine, site_id)
    assert found["u:carol"]["event_count"] == 1
    assert found["u:bob"]["event_count"] == 0  # bob keeps his identify, not the browser's page view


def test_alias_links_a_previous_id(engine, site_id):
    store(engine, site_id, [page(at=T0, anon="old-id")])
    roll(engine, LATER)
    store(engine, site_id, [event("alias", anon=None, user="dave", previous_id="old-id", at=T0 + 1)])
    roll(engine, LATER)
    assert set(facts(engine, site_id)) == {"u:dave"}
    assert facts(engine, site_id)["u:dave"]["event_count"] == 1


def test_events_with_a_user_id_stay_with_that_user(engine, site_id):
    store(engine, site_id, [identify("erin"), page(at=T0 + HOUR, user="frank")])
    roll(engine, LATER)
    found = facts(engine, site_id)
    assert found["u:frank"]["event_count"] == 1
    assert found["u:erin"]["event_count"] == 0
