"""Site-defined rules mean the same in Python (`site_meaning`) and in SQL (`site_sql`): generated rules, facts,
behaviour counts and memberships around the window boundaries; and generated property filters over events."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, literal, select

from core import schema
from segmenter.rules.definitions import HOUR, MINUTE, parse_duration
from segmenter.rules.grammar import check_definition
from segmenter.rules.site_meaning import holds, matches, reason
from segmenter.rules.site_sql import SiteRuleCompiler, event_matches
from tests.helpers.segmenter import T0, event

NOW = T0 + 100 * HOUR + 30 * MINUTE  # mid-hour: windows start inside an hour
WINDOWS = ("1h", "2h", "90m", "1d", "3d")
facts_table = schema.ProfileFact.__table__
counts = schema.BehaviourCount.__table__
memberships = schema.Membership.__table__
behaviours = schema.Behaviour.__table__
events = schema.Event.__table__
BEHAVIOURS = {"A": 1, "B": 2}  # behaviour keys of the generated rules -> counter ids
HYPOTHESIS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def near(window):
    """Times close to `now - window`: the boundary of a fact's window."""
    edge = NOW - parse_duration(window)
    return st.sampled_from([edge - 1, edge, edge + 1, NOW, NOW - 10 * 24 * HOUR])


numbers = st.sampled_from([0, 1, 2, 3, 5])
comparison = st.dictionaries(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), numbers, min_size=1, max_size=2)
texts = st.sampled_from(["Shoes", "Shoe", "Hats", "s"])


def fact_conditions():
    number_fact = st.builds(
        lambda name, ops: {"fact": name, **ops},
        st.sampled_from(["order_count", "sessions", "cart_items"]),
        st.one_of(comparison, st.builds(lambda items: {"in": items}, st.lists(numbers, min_size=1, max_size=3))),
    )
    time_fact = st.builds(
        lambda name, op, window: {"fact": name, op: window},
        st.sampled_from(["last_order_at", "last_seen_at"]),
        st.sampled_from(["within", "older_than"]),
        st.sampled_from(WINDOWS),
    )
    text_fact = st.builds(
        lambda op, value: {"fact": "last_product_category", op: value if op != "in" else [value, "Hats"]},
        st.sampled_from(["eq", "ne", "prefix", "in"]),
        texts,
    )
    present = st.builds(
        lambda name, flag: {"fact": name, "present": flag},
        st.sampled_from(["last_order_at", "last_product_category", "order_count"]),
        st.booleans(),
    )
    return st.one_of(number_fact, time_fact, text_fact, present)


def behaviour_conditions():
    def build(key, window, kind, bounds):
        node = {"event": key}
        if window:
            node["within"] = window
        if kind == "count":
            if bounds:
                node["count"] = bounds
        else:
            node = {**node, "event": "B", kind: {"property": "price", **(bounds or {"gte": 1})}}
        return node

    return st.builds(
        build,
        st.sampled_from(list(BEHAVIOURS)),
        st.one_of(st.none(), st.sampled_from(WINDOWS)),
        st.sampled_from(["count", "count", "sum", "min", "max"]),
        st.one_of(st.none(), comparison),
    )


leaves = st.one_of(
    fact_conditions(), behaviour_conditions(), st.builds(lambda s: {"segment": s}, st.sampled_from(["s1", "s2"]))
)
rules = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda rule: {"not": rule}, inner),
    ),
    max_leaves=6,
)


def count_rows():
    first_hour = (NOW - 2 * HOUR) // HOUR
    row = st.tuples(
        st.integers(first_hour - 30, first_hour + 3),
        st.integers(1, 3),
        st.one_of(st.none(), st.integers(-500, 900)),
        st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 3.0])),
    ).map(lambda r: (r[0], r[1], r[2], r[3], None if r[3] is None else r[3] + 1.0))
    return st.lists(row, max_size=5, unique_by=lambda r: r[0])


profiles = st.fixed_dictionaries(
    {
        "order_count": numbers,
        "sessions": numbers,
        "cart_items": numbers,
        "last_order_at": st.one_of(st.none(), near("1d"), near("2h"), near("90m")),
        "last_seen_at": st.one_of(st.none(), near("3d"), near("1h")),
        "last_product_category": st.one_of(st.none(), texts),
        "behaviours": st.fixed_dictionaries({"A": count_rows(), "B": count_rows()}),
        "segments": st.sets(st.sampled_from(["s1", "s2"])),
    }
)


def key_of(node):
    return node["event"]


def _add_behaviours(conn, site_id):
    for key, number in BEHAVIOURS.items():
        conn.execute(
            insert(behaviours).values(
                id=number, site_id=site_id, key=key, event=key, where={}, property=None, created_at=0, counted_to=0
            )
        )


@HYPOTHESIS
@given(rule=rules, profile=profiles)
def test_python_and_sql_agree_on_generated_rules(engine, site, rule, profile):
    site_id = site["site_id"]
    assert check_definition({"name": "generated", "rule": rule}, {"s1": {"event": "A"}, "s2": {"event": "A"}}) == {}
    expected = holds(rule, profile, NOW, key_of)
    compiler = SiteRuleCompiler(engine.dialect.name, lambda node: BEHAVIOURS[node["event"]])
    compiled, why = compiler.holds(rule), compiler.reason(rule)
    with engine.connect() as conn, conn.begin() as transaction:
        _add_behaviours(conn, site_id)
        columns = {k: v for k, v in profile.items() if k not in ("behaviours", "segments")}
        conn.execute(insert(facts_table).values(site_id=site_id, profile_id="p", next_check_at=0, **columns))
        for key, rows in profile["behaviours"].items():
            for hour, count, total, low, high in rows:
                conn.execute(
                    insert(counts).values(
                        site_id=site_id,
                        behaviour_id=BEHAVIOURS[key],
                        profile_id="p",
                        hour=hour,
                        count=count,
                        sum_hundredths=total,
                        min_value=low,
                        max_value=high,
                    )
                )
        for name in profile["segments"]:
            conn.execute(insert(memberships).values(site_id=site_id, segment=name, profile_id="p", entered_at=0))
        got, said = conn.execute(
            select(compiled, why).where(facts_table.c.site_id == site_id, facts_table.c.profile_id == "p"),
            {"now": NOW},
        ).one()
        transaction.rollback()
    assert bool(got) is expected, (json.dumps(rule), profile)
    if expected:  # a member's reason names the clauses that hold
        assert said == reason(rule, profile, NOW, key_of), json.dumps(rule)


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, 5, -1, 1.5, 2.0]),
    st.sampled_from(["Shoes", "Shoe", "shoes", "", "1", "true"]),
    st.just([1]),
    st.just({"a": 1}),
)
filters = st.dictionaries(
    st.sampled_from(["category", "price", "flag"]),
    st.one_of(
        st.sampled_from(["Shoes", 1, 2.0, True, False]),
        st.dictionaries(
            st.sampled_from(["eq", "ne"]), st.sampled_from(["Shoes", 1, 2.0, True, "1"]), min_size=1, max_size=1
        ),
        st.builds(lambda items: {"in": items}, st.lists(st.sampled_from(["Shoes", 1, 2.0, True]), min_size=1)),
        st.builds(lambda p: {"prefix": p}, st.sampled_from(["Sh", "sh", "S", "1"])),
        st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from([0, 1, 1.5, 2]), min_size=1),
    ),
    max_size=3,
)


@HYPOTHESIS
@given(
    where=filters,
    properties=st.lists(
        st.dictionaries(st.sampled_from(["category", "price", "flag", "other"]), json_values), max_size=4
    ),
)
def test_property_filters_mean_the_same_over_stored_events(engine, site, where, properties):
    site_id = site["site_id"]
    behaviour = {"event": "Viewed", "where": where}
    expected = sum(matches(where, props) for props in properties)
    with engine.connect() as conn, conn.begin() as transaction:
        for number, props in enumerate(properties):
            row = event("track", "Viewed", anon=f"a{number}", props=props)
            conn.execute(insert(events).values(site_id=site_id, **row))
        got = conn.scalar(
            select(func.count()).where(
                events.c.site_id == literal(site_id), event_matches(engine.dialect.name, behaviour)
            )
        )
        transaction.rollback()
    assert got == expected, (where, properties)
