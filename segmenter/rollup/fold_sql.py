"""The set-based upserts of a fold: scratch table `fold_events` into the fact tables.

Each statement merges with a commutative operation (min, max, sum, latest by
(time, message_id), union of intervals), so the order of chunks never matters.
"""

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Delete,
    Executable,
    Insert,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)

from core import planner, schema, sql
from segmenter.rollup.scratch import (
    fold_affected,
    fold_derived,
    fold_events,
    fold_merged_sessions,
    fold_new_sessions,
    fold_old_sessions,
    fold_surplus_views,
    fold_touched,
)
from segmenter.rules import definitions

facts = schema.ProfileFact.__table__
sessions = schema.ProfileSession.__table__
views = schema.ProfileView.__table__
cart = schema.CartLine.__table__
memberships = schema.Membership.__table__
changes = schema.MembershipChange.__table__


# Statements are built once per dialect with these parameters, then executed many times.
SITE = bindparam("site", type_=Integer)
LO = bindparam("lo", type_=BigInteger)
HI = bindparam("hi", type_=BigInteger)
NOW = bindparam("now", type_=BigInteger)
RUN = bindparam("run", type_=BigInteger)


def execute_counting(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
    """Execute `stmt` and return how many rows it wrote (also for INSERT ... SELECT)."""
    return conn.execute(stmt.execution_options(preserve_rowcount=True), params or {}).rowcount


@cache
def fold_statements(dialect: str) -> list[Executable]:
    """The statements that merge `fold_events` into the fact tables, in order."""
    return [
        upsert_facts(dialect),
        *fold_sessions(dialect),
        *fold_views(dialect),
        fold_cart(dialect),
        *update_derived(dialect),
    ]


def earlier(
    at: ColumnElement[Any],
    message_id: ColumnElement[Any],
    other_at: ColumnElement[Any],
    other_message_id: ColumnElement[Any],
) -> ColumnElement[bool]:
    """(at, message_id) sorts before (other_at, other_message_id): the latest-by tie-break."""
    return or_(at < other_at, and_(at == other_at, message_id < other_message_id))


# --- facts -----------------------------------------------------------------------------


def _flag(condition):
    return case((condition, 1), else_=0)


def _latest(where, *columns):
    """Per profile, the columns of its latest fold_events row matching `where`."""
    fe = fold_events
    ranked = (
        select(
            fe.c.profile_id,
            fe.c.at,
            fe.c.message_id,
            *columns,
            func.row_number()
            .over(partition_by=fe.c.profile_id, order_by=(fe.c.at.desc(), fe.c.message_id.desc()))
            .label("rn"),
        )
        .where(where)
        .subquery()
    )
    return select(ranked).where(ranked.c.rn == 1).subquery()


@cache
def upsert_facts(dialect: str) -> Insert:
    fe = fold_events
    event = fe.c.event
    is_view = event == definitions.PRODUCT_VIEWED
    is_order = event == definitions.ORDER_COMPLETED
    engaged = event.in_((definitions.EMAIL_OPENED, definitions.EMAIL_CLICKED))
    agg = (
        select(
            fe.c.profile_id,
            func.min(case((fe.c.activity, fe.c.at))).label("first_seen_at"),
            func.max(case((fe.c.activity, fe.c.at))).label("last_seen_at"),
            func.sum(_flag(fe.c.activity)).label("event_count"),
            func.sum(_flag(fe.c.type.in_(("page", "screen")))).label("page_views"),
            func.sum(_flag(is_view)).label("product_views"),
            func.max(case((event == definitions.PRODUCT_ADDED, fe.c.at))).label("last_cart_add_at"),
            func.max(case((event == definitions.CHECKOUT_STARTED, fe.c.at))).label("last_checkout_at"),
            func.min(case((is_order, fe.c.at))).label("first_order_at"),
            func.max(case((is_order, fe.c.at))).label("last_order_at"),
            func.sum(_flag(is_order)).label("order_count"),
            sql.bounded_sum(dialect, func.coalesce(fe.c.revenue_cents, 0)).label("revenue_cents"),
            func.sum(_flag(event == definitions.EMAIL_OPENED)).label("email_opens"),
            func.sum(_flag(event == definitions.EMAIL_CLICKED)).label("email_clicks"),
            func.min(case((event.in_(definitions.EMAIL_EVENTS), fe.c.at))).label("first_email_at"),
            func.max(case((engaged, fe.c.at))).label("last_email_engaged_at"),
        )
        .group_by(fe.c.profile_id)
        .subquery()
    )
    view = _latest(is_view, fe.c.product_id, fe.c.product_name, fe.c.product_url, fe.c.category, fe.c.price_cents)
    trait = _latest(fe.c.traits.is_not(None), fe.c.traits)
    email = _latest(fe.c.email.is_not(None), fe.c.email)
    source = (
        select(
            SITE.label("site_id"),
            agg.c.profile_id,
            case((agg.c.profile_id.like("u:%"), func.substr(agg.c.profile_id, 3))).label("user_id"),
            *(agg.c[name] for name in agg.c.keys() if name != "profile_id"),
            view.c.at.label("last_product_viewed_at"),
            view.c.message_id.label("last_product_message_id"),
            view.c.product_id.label("last_product_id"),
            view.c.product_name.label("last_product_name"),
            view.c.product_url.label("last_product_url"),
            view.c.category.label("last_product_category"),
            view.c.price_cents.label("last_product_price_cents"),
            email.c.email,
            email.c.at.label("email_at"),
            email.c.message_id.label("email_message_id"),
            trait.c.traits,
            trait.c.at.label("traits_at"),
            trait.c.message_id.label("traits_message_id"),
            literal(0).label("sessions"),
            literal(0).label("cart_items"),
            literal(0).label("cart_value_cents"),
            literal(0).label("next_check_at"),
        )
        .select_from(
            agg.outerjoin(view, view.c.profile_id == agg.c.profile_id)
            .outerjoin(trait, trait.c.profile_id == agg.c.profile_id)
            .outerjoin(email, email.c.profile_id == agg.c.profile_id)
        )
        .where(agg.c.profile_id.is_not(None))
    )
    names = [column.name for column in source.selected_columns]
    stmt = sql.dialect_insert(dialect, facts).from_select(names, source)
    new, old = stmt.excluded, facts.c

    def earliest(name):
        return case((or_(old[name].is_(None), new[name] < old[name]), new[name]), else_=old[name])

    def latest(name):
        return case((or_(old[name].is_(None), new[name] > old[name]), new[name]), else_=old[name])

    def newer(at, message_id):
        return and_(
            new[at].is_not(None), or_(old[at].is_(None), earlier(old[at], old[message_id], new[at], new[message_id]))
        )

    def latest_by(at, message_id, columns):
        is_newer = newer(at, message_id)
        return {name: case((is_newer, new[name]), else_=old[name]) for name in (at, message_id, *columns)}

    set_ = {name: earliest(name) for name in ("first_seen_at", "first_order_at", "first_email_at")}
    set_.update(
        {
            name: latest(name)
            for name in (
                "last_seen_at",
                "last_cart_add_at",
                "last_checkout_at",
                "last_order_at",
                "last_email_engaged_at",
            )
        }
    )
    # Sums stay in their column's range whatever visitors send (and whatever an older version stored).
    set_.update(
        {
            name: sql.clamp(cast(old[name], BigInteger) + new[name], 0, sql.INT_MAX)
            for name in ("event_count", "page_views", "product_views", "order_count", "email_opens", "email_clicks")
        }
    )
    money = sql.MONEY_MAX_CENTS
    set_["revenue_cents"] = sql.clamp(sql.clamp(old.revenue_cents, -money, money) + new.revenue_cents, -money, money)
    set_.update(
        latest_by(
            "last_product_viewed_at",
            "last_product_message_id",
            (
                "last_product_id",
                "last_product_name",
                "last_product_url",
                "last_product_category",
                "last_product_price_cents",
            ),
        )
    )
    set_.update(latest_by("email_at", "email_message_id", ("email",)))
    set_.update(latest_by("traits_at", "traits_message_id", ("traits",)))
    set_["next_check_at"] = new.next_check_at
    return stmt.on_conflict_do_update(index_elements=["site_id", "profile_id"], set_=set_)


# --- sessions --------------------------------------------------------------------------


def _islands(rows, start, end, gap_from_previous):
    """Group `rows` (a subquery with profile_id) into runs: a row starts a new run when
    `gap_from_previous` is NULL or greater than SESSION_GAP; returns profile_id, start, end."""
    marked = select(
        rows.c.profile_id,
        start.label("s"),
        end.label("e"),
        case((gap_from_previous <= definitions.SESSION_GAP, 0), else_=1).label("starts"),
    ).subquery()
    numbered = select(
        marked.c.profile_id,
        marked.c.s,
        marked.c.e,
        func.sum(marked.c.starts)
        .over(partition_by=marked.c.profile_id, order_by=(marked.c.s, marked.c.e), rows=(None, 0))
        .label("run"),
    ).subquery()
    return select(numbered.c.profile_id, func.min(numbered.c.s), func.max(numbered.c.e)).group_by(
        numbered.c.profile_id, numbered.c.run
    )


@cache
def fold_sessions(dialect: str) -> list[Executable]:
    """Merge the chunk's activity into the session intervals it touches (within SESSION_GAP)."""
    fe = fold_events
    activity = select(fe.c.profile_id, fe.c.at).where(fe.c.activity.is_(True)).subquery()
    previous = func.lag(activity.c.at).over(partition_by=activity.c.profile_id, order_by=activity.c.at)
    columns = ["profile_id", "started_at", "ended_at"]
    statements: list[Executable] = [
        insert(fold_new_sessions).from_select(
            columns, _islands(activity, activity.c.at, activity.c.at, activity.c.at - previous)
        )
    ]
    # The join below must be driven from the chunk's sessions: the planner needs their count.
    statements.append(planner.analyze_scratch_statement(dialect, fold_new_sessions))
    new, old = fold_new_sessions, fold_old_sessions
    near = and_(
        sessions.c.site_id == SITE,
        sessions.c.profile_id == new.c.profile_id,
        sessions.c.started_at <= new.c.ended_at + definitions.SESSION_GAP,
        sessions.c.ended_at >= new.c.started_at - definitions.SESSION_GAP,
    )
    # Driven from the chunk's sessions into the primary key: never a scan of the stored ones.
    statements.append(
        insert(old).from_select(
            columns,
            select(sessions.c.profile_id, sessions.c.started_at, sessions.c.ended_at)
            .select_from(new.join(sessions, near))
            .distinct(),
        )
    )
    both = union_all(
        select(new.c.profile_id, new.c.started_at, new.c.ended_at),
        select(old.c.profile_id, old.c.started_at, old.c.ended_at),
    ).subquery()
    reach = func.max(both.c.ended_at).over(
        partition_by=both.c.profile_id, order_by=(both.c.started_at, both.c.ended_at), rows=(None, -1)
    )
    statements.append(
        insert(fold_merged_sessions).from_select(
            columns, _islands(both, both.c.started_at, both.c.ended_at, both.c.started_at - reach)
        )
    )
    statements.append(
        delete(sessions).where(
            sessions.c.site_id == SITE,
            tuple_(sessions.c.profile_id, sessions.c.started_at).in_(select(old.c.profile_id, old.c.started_at)),
        )
    )
    merged = fold_merged_sessions
    statements.append(
        insert(sessions).from_select(
            ["site_id", *columns], select(SITE, merged.c.profile_id, merged.c.started_at, merged.c.ended_at)
        )
    )
    return statements


# --- product views and cart ------------------------------------------------------------


@cache
def fold_views(dialect: str) -> list[Executable]:
    """Add the chunk's product views, then keep each touched profile's latest RECENT_VIEWS_KEPT."""
    fe = fold_events
    order = (fe.c.at.desc(), fe.c.message_id.desc())
    ranked = (
        select(
            fe.c.profile_id,
            fe.c.message_id,
            fe.c.at,
            fe.c.product_id,
            fe.c.product_name,
            fe.c.product_url,
            fe.c.category,
            fe.c.price_cents,
            func.row_number().over(partition_by=fe.c.profile_id, order_by=order).label("rn"),
        )
        .where(fe.c.event == definitions.PRODUCT_VIEWED)
        .subquery()
    )
    newest = select(SITE, *(c for c in ranked.c if c.name != "rn")).where(ranked.c.rn <= definitions.RECENT_VIEWS_KEPT)
    stmt = sql.insert_ignoring_duplicates(dialect, views, ["site_id", "profile_id", "message_id"])
    add = stmt.from_select(
        ["site_id", "profile_id", "message_id", "at", "product_id", "name", "url", "category", "price_cents"], newest
    )
    # The surplus, found from the touched profiles through the primary key, then deleted by it.
    kept = (
        select(
            views.c.profile_id,
            views.c.message_id,
            func.row_number()
            .over(partition_by=views.c.profile_id, order_by=(views.c.at.desc(), views.c.message_id.desc()))
            .label("rn"),
        )
        .select_from(
            fold_touched.join(views, and_(views.c.site_id == SITE, views.c.profile_id == fold_touched.c.profile_id))
        )
        .subquery()
    )
    find = insert(fold_surplus_views).from_select(
        ["profile_id", "message_id"],
        select(kept.c.profile_id, kept.c.message_id).where(kept.c.rn > definitions.RECENT_VIEWS_KEPT),
    )
    surplus = select(fold_surplus_views.c.profile_id, fold_surplus_views.c.message_id)
    prune = delete(views).where(views.c.site_id == SITE, tuple_(views.c.profile_id, views.c.message_id).in_(surplus))
    return [add, find, prune]


@cache
def fold_cart(dialect: str) -> Insert:
    """Keep, per profile and product, the latest add or remove."""
    fe = fold_events
    ranked = (
        select(
            fe.c.profile_id,
            fe.c.product_id,
            (fe.c.event == definitions.PRODUCT_ADDED).label("added"),
            fe.c.at,
            fe.c.message_id,
            fe.c.product_name,
            fe.c.product_url,
            fe.c.category,
            fe.c.price_cents,
            fe.c.quantity,
            func.row_number()
            .over(partition_by=(fe.c.profile_id, fe.c.product_id), order_by=(fe.c.at.desc(), fe.c.message_id.desc()))
            .label("rn"),
        )
        .where(fe.c.event.in_((definitions.PRODUCT_ADDED, definitions.PRODUCT_REMOVED)), fe.c.product_id.is_not(None))
        .subquery()
    )
    names = [
        "site_id",
        "profile_id",
        "product_id",
        "added",
        "at",
        "message_id",
        "name",
        "url",
        "category",
        "price_cents",
        "quantity",
    ]
    latest = select(SITE, *(c for c in ranked.c if c.name != "rn")).where(ranked.c.rn == 1)
    stmt = sql.dialect_insert(dialect, cart).from_select(names, latest)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "profile_id", "product_id"],
        set_={name: new[name] for name in names[3:]},
        where=earlier(cart.c.at, cart.c.message_id, new.at, new.message_id),
    )
    return stmt


# --- facts derived from the side tables -------------------------------------------------


@cache
def update_derived(dialect: str) -> list[Executable]:
    """Sessions, cart items and value, top categories of the touched profiles."""
    touched = select(fold_touched.c.profile_id)
    session_counts = (
        select(sessions.c.profile_id, sql.clamp(func.count(), 0, sql.INT_MAX).label("n"))
        .where(sessions.c.site_id == SITE, sessions.c.profile_id.in_(touched))
        .group_by(sessions.c.profile_id)
        .subquery()
    )
    in_cart = and_(
        cart.c.site_id == SITE,
        cart.c.profile_id.in_(touched),
        cart.c.added.is_(True),
        facts.c.site_id == SITE,
        facts.c.profile_id == cart.c.profile_id,
        or_(facts.c.last_order_at.is_(None), cart.c.at > facts.c.last_order_at),
    )
    carts = (
        select(
            cart.c.profile_id,
            sql.clamp(func.count(), 0, sql.INT_MAX).label("lines"),
            sql.bounded_sum(dialect, sql.wide(dialect, func.coalesce(cart.c.price_cents, 0)) * cart.c.quantity).label(
                "value"
            ),
        )
        .where(in_cart)
        .group_by(cart.c.profile_id)
        .subquery()
    )
    per_category = (
        select(
            views.c.profile_id,
            views.c.category,
            func.row_number()
            .over(
                partition_by=views.c.profile_id,
                order_by=(func.count().desc(), func.max(views.c.at).desc(), views.c.category),
            )
            .label("rank"),
        )
        .where(
            views.c.site_id == SITE,
            views.c.profile_id.in_(touched),
            views.c.category.is_not(None),
        )
        .group_by(views.c.profile_id, views.c.category)
        .subquery()
    )
    firsts = [
        func.max(case((per_category.c.rank == n, per_category.c.category)))
        for n in range(1, definitions.TOP_CATEGORIES + 1)
    ]
    top = (
        select(per_category.c.profile_id, *(first.label(f"c{n}") for n, first in enumerate(firsts, 1)))
        .group_by(per_category.c.profile_id)
        .subquery()
    )
    top_list = case(
        *(
            (top.c[f"c{n}"].is_not(None), sql.json_array(dialect, *(top.c[f"c{i}"] for i in range(1, n + 1))))
            for n in range(definitions.TOP_CATEGORIES, 0, -1)
        )
    )
    rows = select(
        fold_touched.c.profile_id,
        func.coalesce(session_counts.c.n, 0),
        func.coalesce(carts.c.lines, 0),
        func.coalesce(carts.c.value, 0),
        top_list,
    ).select_from(
        fold_touched.outerjoin(session_counts, session_counts.c.profile_id == fold_touched.c.profile_id)
        .outerjoin(carts, carts.c.profile_id == fold_touched.c.profile_id)
        .outerjoin(top, top.c.profile_id == fold_touched.c.profile_id)
    )
    d = fold_derived
    return [
        insert(fold_derived).from_select(
            ["profile_id", "sessions", "cart_items", "cart_value_cents", "top_categories"], rows
        ),
        planner.analyze_scratch_statement(dialect, fold_derived),  # else SQLite walks every fact of the site
        update(facts)
        .where(facts.c.site_id == SITE, facts.c.profile_id == d.c.profile_id)
        .values(
            sessions=d.c.sessions,
            cart_items=d.c.cart_items,
            cart_value_cents=d.c.cart_value_cents,
            top_categories=d.c.top_categories,
        ),
    ]


def _merged():
    return (
        select(
            fold_affected.c.profile_id,
            func.min(fold_affected.c.merged_into).label("merged_into"),
            func.min(fold_affected.c.merged_at).label("merged_at"),
        )
        .where(fold_affected.c.merged_into.is_not(None))
        .group_by(fold_affected.c.profile_id)
        .subquery()
    )


def _vanished():
    return ~exists().where(facts.c.site_id == SITE, facts.c.profile_id == memberships.c.profile_id)


@cache
def merged_exits(dialect: str) -> Insert:
    """Memberships of profiles that the rebuild emptied leave, "merged into" the user's profile.
    (The caller has made this transaction the only writer of changes: see lock_for_ordered_ids.)"""
    merged = _merged()
    rows = (
        select(
            memberships.c.site_id,
            memberships.c.segment,
            memberships.c.profile_id,
            literal("exit"),
            sql.least(dialect, merged.c.merged_at, NOW),
            NOW,
            literal("merged into ") + merged.c.merged_into,
            memberships.c.context,
            RUN,
        )
        .where(
            memberships.c.site_id == SITE,
            memberships.c.profile_id == merged.c.profile_id,
            _vanished(),
        )
        .order_by(memberships.c.segment, memberships.c.profile_id)
    )
    names = ["site_id", "segment", "profile_id", "change", "at", "detected_at", "reason", "context", "run_id"]
    return insert(changes).from_select(names, rows)


@cache
def forget_merged_memberships() -> Delete:
    return delete(memberships).where(
        memberships.c.site_id == SITE,
        memberships.c.profile_id.in_(select(_merged().c.profile_id)),
        _vanished(),
    )
