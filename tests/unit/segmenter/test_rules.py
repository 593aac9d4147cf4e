"""Every built-in segment at its boundaries, judged by the pure rules (their SQL twin, on the same cases:
tests/integration/segmenter/test_rules.py)."""

import pytest

from segmenter.rules.definitions import DAY, HOUR, MINUTE, RULES_BY_NAME, default_settings
from segmenter.rules.meaning import LEFT_OUT, MEMBER, NOT_MEMBER, evaluate_rule, next_check_at

NOW = 1_800_000_000_000
S = default_settings()

# (segment, case, facts, expected status, expected `at` (None: not checked))
CASES = [
    # browsers: 2+ product views in the last 7d, none followed by a cart add or an order
    (
        "browsers",
        "two recent views",
        {"product_view_times": [NOW - 2 * MINUTE, NOW - MINUTE]},
        MEMBER,
        NOW - 2 * MINUTE,
    ),
    ("browsers", "one view is too little data", {"product_view_times": [NOW - MINUTE]}, LEFT_OUT, NOW),
    ("browsers", "second view 7d ago exactly", {"product_view_times": [NOW - 7 * DAY, NOW - MINUTE]}, NOT_MEMBER, NOW),
    (
        "browsers",
        "second view 1 ms inside 7d",
        {"product_view_times": [NOW - 7 * DAY + 1, NOW]},
        MEMBER,
        NOW - 7 * DAY + 1,
    ),
    (
        "browsers",
        "cart add after the views",
        {"product_view_times": [NOW - 3 * HOUR, NOW - 2 * HOUR], "last_cart_add_at": NOW - HOUR},
        NOT_MEMBER,
        NOW - HOUR,
    ),
    (
        "browsers",
        "cart add at the same ms",
        {"product_view_times": [NOW - 3 * HOUR, NOW - 2 * HOUR], "last_cart_add_at": NOW - 3 * HOUR},
        NOT_MEMBER,
        NOW - 3 * HOUR,
    ),
    (
        "browsers",
        "cart add before the views",
        {"product_view_times": [NOW - 3 * HOUR, NOW - 2 * HOUR], "last_cart_add_at": NOW - 4 * HOUR},
        MEMBER,
        NOW - 3 * HOUR,
    ),
    (
        "browsers",
        "order after the views",
        {"product_view_times": [NOW - 3 * HOUR, NOW - 2 * HOUR], "last_order_at": NOW - HOUR},
        NOT_MEMBER,
        NOW - HOUR,
    ),
    # cart_abandoners: cart add 1h..7d ago, nothing in the cart checked out since
    ("cart_abandoners", "add 1h ago exactly", {"last_cart_add_at": NOW - HOUR, "cart_items": 1}, MEMBER, NOW),
    (
        "cart_abandoners",
        "add 1 ms short of 1h",
        {"last_cart_add_at": NOW - HOUR + 1, "cart_items": 1},
        NOT_MEMBER,
        NOW - HOUR + 1,
    ),
    (
        "cart_abandoners",
        "add 1 ms inside 7d",
        {"last_cart_add_at": NOW - 7 * DAY + 1, "cart_items": 2},
        MEMBER,
        NOW - 6 * DAY - 23 * HOUR + 1,
    ),
    ("cart_abandoners", "add 7d ago exactly", {"last_cart_add_at": NOW - 7 * DAY, "cart_items": 1}, NOT_MEMBER, NOW),
    (
        "cart_abandoners",
        "checkout after the add",
        {"last_cart_add_at": NOW - 3 * HOUR, "last_checkout_at": NOW - 2 * HOUR, "cart_items": 1},
        NOT_MEMBER,
        NOW - 2 * HOUR,
    ),
    (
        "cart_abandoners",
        "checkout before the add",
        {"last_cart_add_at": NOW - 3 * HOUR, "last_checkout_at": NOW - 4 * HOUR, "cart_items": 1},
        MEMBER,
        NOW - 2 * HOUR,
    ),
    (
        "cart_abandoners",
        "order after the add",
        {"last_cart_add_at": NOW - 3 * HOUR, "last_order_at": NOW - 2 * HOUR, "cart_items": 1},
        NOT_MEMBER,
        NOW - 2 * HOUR,
    ),
    ("cart_abandoners", "cart emptied", {"last_cart_add_at": NOW - 3 * HOUR, "cart_items": 0}, NOT_MEMBER, NOW),
    ("cart_abandoners", "never added", {"last_seen_at": NOW - HOUR}, LEFT_OUT, NOW),
    # checkout_abandoners: checkout 1h..7d ago, no order since
    ("checkout_abandoners", "checkout 1h ago exactly", {"last_checkout_at": NOW - HOUR}, MEMBER, NOW),
    (
        "checkout_abandoners",
        "checkout 1 ms short of 1h",
        {"last_checkout_at": NOW - HOUR + 1},
        NOT_MEMBER,
        NOW - HOUR + 1,
    ),
    ("checkout_abandoners", "checkout 7d ago exactly", {"last_checkout_at": NOW - 7 * DAY}, NOT_MEMBER, NOW),
    (
        "checkout_abandoners",
        "order after checkout",
        {"last_checkout_at": NOW - 3 * HOUR, "last_order_at": NOW - 2 * HOUR},
        NOT_MEMBER,
        NOW - 2 * HOUR,
    ),
    (
        "checkout_abandoners",
        "order before checkout",
        {"last_checkout_at": NOW - 3 * HOUR, "last_order_at": NOW - 5 * HOUR},
        MEMBER,
        NOW - 2 * HOUR,
    ),
    ("checkout_abandoners", "never checked out", {"last_cart_add_at": NOW - 3 * HOUR}, LEFT_OUT, NOW),
    # active: seen in the last 7d
    ("active", "seen 1 ms inside 7d", {"last_seen_at": NOW - 7 * DAY + 1}, MEMBER, NOW - 7 * DAY + 1),
    ("active", "seen 7d ago exactly", {"last_seen_at": NOW - 7 * DAY}, NOT_MEMBER, NOW),
    ("active", "never seen (identify only)", {"traits": {"email": "x@y.z"}}, LEFT_OUT, NOW),
    # dormant: was active (2+ sessions or 1+ order), not seen for 30d
    ("dormant", "2 sessions, 30d ago exactly", {"sessions": 2, "last_seen_at": NOW - 30 * DAY}, MEMBER, NOW),
    (
        "dormant",
        "2 sessions, 1 ms short of 30d",
        {"sessions": 2, "last_seen_at": NOW - 30 * DAY + 1},
        NOT_MEMBER,
        NOW - 30 * DAY + 1,
    ),
    ("dormant", "1 session, no order: a bounce", {"sessions": 1, "last_seen_at": NOW - 90 * DAY}, LEFT_OUT, NOW),
    (
        "dormant",
        "1 session and an order",
        {"sessions": 1, "order_count": 1, "last_seen_at": NOW - 40 * DAY},
        MEMBER,
        NOW - 10 * DAY,
    ),
    # new_buyers / repeat_buyers
    ("new_buyers", "one order", {"order_count": 1, "last_order_at": NOW - DAY}, MEMBER, NOW),
    ("new_buyers", "two orders", {"order_count": 2}, NOT_MEMBER, NOW),
    ("new_buyers", "no order", {"order_count": 0}, LEFT_OUT, NOW),
    ("repeat_buyers", "two orders", {"order_count": 2}, MEMBER, NOW),
    ("repeat_buyers", "one order", {"order_count": 1}, NOT_MEMBER, NOW),
    ("repeat_buyers", "no order", {"order_count": 0}, LEFT_OUT, NOW),
    # email_engaged: opened or clicked in the last 30d
    (
        "email_engaged",
        "open 1 ms inside 30d",
        {"first_email_at": NOW - 40 * DAY, "last_email_engaged_at": NOW - 30 * DAY + 1},
        MEMBER,
        NOW - 30 * DAY + 1,
    ),
    (
        "email_engaged",
        "open 30d ago exactly",
        {"first_email_at": NOW - 40 * DAY, "last_email_engaged_at": NOW - 30 * DAY},
        NOT_MEMBER,
        NOW,
    ),
    ("email_engaged", "received, never opened", {"first_email_at": NOW - DAY}, NOT_MEMBER, NOW),
    ("email_engaged", "no email at all", {"last_seen_at": NOW}, LEFT_OUT, NOW),
    # email_unengaged: emails for 30d+ and none opened or clicked in the last 30d (young profiles left out)
    ("email_unengaged", "first email 30d ago exactly, none opened", {"first_email_at": NOW - 30 * DAY}, MEMBER, NOW),
    ("email_unengaged", "young: first email 29d ago", {"first_email_at": NOW - 29 * DAY}, LEFT_OUT, NOW - 29 * DAY),
    (
        "email_unengaged",
        "opened 10d ago",
        {"first_email_at": NOW - 60 * DAY, "last_email_engaged_at": NOW - 10 * DAY},
        NOT_MEMBER,
        NOW - 10 * DAY,
    ),
    (
        "email_unengaged",
        "last open 30d ago exactly",
        {"first_email_at": NOW - 60 * DAY, "last_email_engaged_at": NOW - 30 * DAY},
        MEMBER,
        NOW,
    ),
]


def test_every_segment_has_cases():
    assert {case[0] for case in CASES} == set(RULES_BY_NAME)
    for name in RULES_BY_NAME:
        assert {case[3] for case in CASES if case[0] == name} == {MEMBER, NOT_MEMBER, LEFT_OUT}, name


@pytest.mark.parametrize(("segment", "case", "facts", "status", "at"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_pure_rule_at_boundary(segment, case, facts, status, at):
    verdict = evaluate_rule(RULES_BY_NAME[segment], facts, S, NOW)
    assert (verdict.status, verdict.at) == (status, at), verdict.reason


@pytest.mark.parametrize("segment", sorted(RULES_BY_NAME))
def test_reasons_read_well(segment):
    rule = RULES_BY_NAME[segment]
    reasons = {evaluate_rule(rule, facts, S, NOW).reason for seg, _c, facts, _s, _a in CASES if seg == segment}
    assert all(reason and "{" not in reason for reason in reasons)


def test_next_check_is_the_nearest_future_threshold():
    facts = {"last_cart_add_at": NOW - 30 * MINUTE, "cart_items": 1, "last_seen_at": NOW - 30 * MINUTE}
    assert next_check_at(facts, S, NOW) == NOW + 30 * MINUTE  # the cart wait ends first
    assert next_check_at({"order_count": 3}, S, NOW) is None
