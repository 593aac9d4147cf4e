"""The grammar of site-defined segments: valid definitions pass; each invalid one is named by a JSON pointer."""

import pytest

from segmenter.rules.grammar import SCHEMA, check_definition, pointer, references

BUILT_IN = ("browsers", "repeat_buyers", "cart_abandoners")

SHOE_FANS = {
    "name": "shoe_fans",
    "description": "Viewed shoes often lately, no order in a month",
    "rule": {
        "all": [
            {
                "event": "Product Viewed",
                "where": {"category": "Shoes", "price": {"gte": 50}},
                "within": "14d",
                "count": {"gte": 3},
            },
            {"not": {"fact": "last_order_at", "within": "30d"}},
            {"any": [{"segment": "repeat_buyers"}, {"fact": "order_count", "eq": 0}]},
        ]
    },
    "requires": {"fact": "sessions", "gte": 2},
}


@pytest.mark.parametrize(
    "rule",
    [
        {"event": "Order Completed", "sum": {"property": "revenue", "gte": 500}},
        {"event": "Order Completed", "within": "90d", "count": {"eq": 0}},
        {"event": "Page Viewed", "where": {"path": {"prefix": "/blog/"}}, "within": "30d"},
        {"event": "Product Viewed", "where": {"category": {"in": ["Shoes", "Boots"]}, "price": {"ne": 0}}},
        {"fact": "last_seen_at", "older_than": "60d"},
        {"fact": "email", "present": False},
        {"fact": "last_product_category", "prefix": "Sh"},
        {"segment": "browsers"},
        {"not": {"not": {"event": "Signed Up"}}},
    ],
)
def test_valid_rules_pass(rule):
    assert check_definition({"name": "mine", "rule": rule}, built_in=BUILT_IN) == {}


def test_a_full_definition_passes_and_its_references_are_found():
    assert check_definition(SHOE_FANS, built_in=BUILT_IN) == {}
    assert references(SHOE_FANS["rule"]) == {"repeat_buyers"}


@pytest.mark.parametrize(
    "definition, where, says",
    [
        (
            {"name": "x", "rule": {"all": [{"event": "A"}, {"event": "B", "within": "2 weeks"}]}},
            "/rule/all/1/within",
            "Not a duration",
        ),
        ({"name": "x", "rule": {"all": [{"event": "A", "fact": "order_count"}]}}, "/rule/all/0", "exactly one of"),
        ({"name": "x", "rule": {}}, "/rule", "exactly one of"),
        ({"name": "x", "rule": {"fact": "order_count", "within": "3d"}}, "/rule/within", "order_count takes"),
        ({"name": "x", "rule": {"fact": "nope", "gte": 1}}, "/rule/fact", "Unknown fact"),
        ({"name": "x", "rule": {"fact": "order_count"}}, "/rule", "order_count needs one of"),
        (
            {"name": "x", "rule": {"event": "A", "count": {"gte": 1}, "sum": {"property": "revenue", "gte": 5}}},
            "/rule/sum",
            "one of count, sum, min or max",
        ),
        (
            {"name": "x", "rule": {"event": "Page Viewed", "where": {"category": "x"}}},
            "/rule/where/category",
            "Page views carry",
        ),
        ({"name": "x", "rule": {"segment": "x"}}, "/rule", "may not refer to themselves"),
        ({"name": "x", "rule": {"segment": "y"}}, "/rule", "x → y → x"),
        ({"name": "x", "rule": {"segment": "nope"}}, "/rule/segment", "No segment named"),
        ({"name": "Bad Name", "rule": {"event": "A"}}, "/name", "lower-case"),
        ({"name": "browsers", "rule": {"event": "A"}}, "/name", "is taken"),
        ({"name": "preview", "rule": {"event": "A"}}, "/name", "is taken"),
        ({"name": "x", "rule": {"event": "A"}, "extra": 1}, "", "Unknown field: 'extra'"),
        ({"rule": {"event": "A"}}, "", "'name' is a required property"),
        ({"name": "x", "rule": {"event": "A", "count": {"gte": "3"}}}, "/rule/count/gte", "not of type"),
        ({"name": "x", "rule": {"event": "A", "count": {"gte": 1e300}}}, "/rule/count/gte", "maximum"),
        ({"name": "x", "rule": {"event": "A", "within": "0d"}}, "/rule/within", "longer than 0"),
        ({"name": "x", "rule": {"event": "A", "within": "3661d"}}, "/rule/within", "at most 3660d"),
        ({"name": "x", "rule": {"event": "A", "where": {"p": [1, 2]}}}, "/rule/where/p", "property filter"),
        ({"name": "x", "rule": {"event": "A", "where": {"p": {"in": []}}}}, "/rule/where/p/in", "non-empty"),
        (
            {"name": "x", "rule": {"event": "A", "where": {"p": {"prefix": "a", "ne": "b"}}}},
            "/rule/where/p",
            "stands alone",
        ),
        ({"name": "x", "rule": {"any": []}}, "/rule/any", "non-empty"),
        ({"name": "x", "rule": {"event": ""}}, "/rule/event", "non-empty"),
        (
            {"name": "x", "rule": {"event": "A"}, "requires": {"fact": "sessions", "within": "1d"}},
            "/requires/within",
            "sessions takes",
        ),
        ([1, 2], "", "JSON object"),
    ],
)
def test_invalid_definitions_name_the_place(definition, where, says):
    problems = check_definition(definition, segments={"y": {"segment": "x"}}, built_in=BUILT_IN)
    assert list(problems) == [where], problems
    assert says in problems[where]


def test_depth_and_size_are_bounded_before_the_schema_walks_them():
    deep = {"event": "A"}
    for _ in range(10_000):
        deep = {"not": deep}
    assert list(check_definition({"name": "x", "rule": deep})) == ["/rule"]
    nine = {"event": "A"}
    for _ in range(8):
        nine = {"not": nine}
    assert (
        "nests deeper than 8" in check_definition({"name": "x", "rule": nine})["/rule/not/not/not/not/not/not/not/not"]
    )
    wide = {"any": [{"any": [{"event": f"E{i}-{j}"} for j in range(20)]} for i in range(4)]}
    assert "more than 64 conditions" in check_definition({"name": "x", "rule": wide})["/rule"]


def test_an_edited_segment_may_keep_its_name_and_pointers_escape():
    assert check_definition({"name": "mine", "rule": {"event": "A"}}, segments={"mine": {"event": "B"}}) == {}
    assert pointer(["where", "a/b~c"]) == "/where/a~1b~0c"


def test_the_schema_is_plain_json():
    import json

    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
