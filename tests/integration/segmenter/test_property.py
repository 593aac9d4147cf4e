"""Facts and memberships depend only on the set of events: not on their order, batches or chunks."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from core import schema, sites
from core.schema import Event
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import DAY, MINUTE
from tests.helpers.segmenter import T0, event, facts, members, store

NOW = T0 + 8 * DAY
ANONS = ["a1", "a2", "a3"]
USERS = ["u1", "u2"]
PRODUCTS = {"p1": ("c1", 10.0), "p2": ("c2", 2.5), "p3": ("c1", 99.99)}
SIDE_TABLES = (schema.ProfileSession, schema.ProfileView, schema.CartLine, schema.Identity)
RESET = (
    schema.MembershipChange,
    schema.Membership,
    schema.RollupRun,
    schema.RollupState,
    schema.ProfileFact,
    *SIDE_TABLES,
    Event,
)

# Times on a 7-minute grid: ties, gaps under and over 30 minutes, some beyond the 7-day windows.
times = st.integers(min_value=0, max_value=8 * DAY // (7 * MINUTE)).map(lambda k: T0 + k * 7 * MINUTE)
who = st.tuples(st.sampled_from(ANONS + [None]), st.sampled_from(USERS + [None])).filter(lambda p: p != (None, None))


@st.composite
def messages(draw):
    anon, user = draw(who)
    at = draw(times)
    kind = draw(
        st.sampled_from(["page", "view", "view", "add", "remove", "checkout", "order", "email", "identify", "alias"])
    )
    product = draw(st.sampled_from(sorted(PRODUCTS)))
    category, price = PRODUCTS[product]
    product_props = {"product_id": product, "category": category, "price": price}
    if kind == "page":
        return event("page", anon=anon, user=user, at=at, is_bot=draw(st.booleans()) and draw(st.booleans()))
    if kind == "view":
        return event("track", "Product Viewed", anon=anon, user=user, at=at, props=product_props)
    if kind in ("add", "remove"):
        name = "Product Added" if kind == "add" else "Product Removed"
        return event(
            "track", name, anon=anon, user=user, at=at, props={**product_props, "quantity": draw(st.integers(1, 3))}
        )
    if kind == "checkout":
        return event("track", "Checkout Started", anon=anon, user=user, at=at)
    if kind == "order":
        return event(
            "track",
            "Order Completed",
            anon=anon,
            user=user,
            at=at,
            props={"revenue": draw(st.sampled_from([0.1, 0.2, 19.99]))},
        )
    if kind == "email":
        name = draw(st.sampled_from(["Email Delivered", "Email Opened", "Email Link Clicked"]))
        return event("track", name, anon=None, user=user or "u1", at=at)
    target = user or draw(st.sampled_from(USERS))
    if kind == "identify":
        return event("identify", anon=anon or "a1", user=target, at=at, traits={"email": f"{target}@x.io", "n": at})
    return event("alias", anon=None, user=target, at=at, previous_id=anon or "a2")


def _numbered(rows):
    return [{**row, "message_id": f"m{n:04d}"} for n, row in enumerate(rows)]


def _side_rows(engine, site_id):
    found = {}
    with engine.connect() as conn:
        for model in SIDE_TABLES:
            table = model.__table__
            rows = conn.execute(select(table).where(table.c.site_id == site_id)).mappings().all()
            found[table.name] = sorted(
                tuple(sorted((k, str(v)) for k, v in row.items() if k != "site_id")) for row in rows
            )
    return found


def _state(engine, site_id):
    everything = facts(engine, site_id, drop=("site_id",))
    return everything, members(engine, site_id), _side_rows(engine, site_id)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(messages(), min_size=1, max_size=25),
    data=st.data(),
)
def test_any_order_and_any_split_give_the_same_facts_and_memberships(engine, rows, data):
    with engine.begin() as conn:
        for model in RESET:
            conn.execute(delete(model.__table__))
        conn.execute(delete(sites.sites))
    one = sites.create_site(engine, "one", [])["site_id"]
    split = sites.create_site(engine, "split", [])["site_id"]
    rows = _numbered(rows)

    store(engine, one, rows)
    run_rollup(engine, now=NOW, site_id=one)

    order = data.draw(st.permutations(range(len(rows))), label="order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(rows) - 1)), max_size=3), label="cuts"))
    chunk = data.draw(st.integers(1, 6), label="chunk_size")
    shuffled = [rows[i] for i in order]
    for start, end in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        store(engine, split, shuffled[start:end])
        summary = run_rollup(engine, now=NOW, site_id=split, chunk_size=chunk)[0]
        assert summary.status == "done", summary.error

    assert _state(engine, split) == _state(engine, one)
