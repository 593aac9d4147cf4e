"""Folding a chunk of a site's events into profile facts, in the caller's transaction.

Every statement is set-based and every aggregate commutes (count, sum, min, max,
latest-by-(time, message_id), union of session intervals, latest state per cart
product, the latest N product views), so events may arrive late and out of order and
chunks may be cut anywhere: the facts depend only on the set of events folded.

Identity: a profile is `u:<userId>` for events with a user id or an anonymous id
linked to one (the earliest link wins), else `a:<anonymousId>`. When a chunk links an
anonymous id whose events were folded before, the profiles involved are rebuilt from
their stored events (the only time a fold reads old events), and the anonymous
profile, now empty, leaves its segments ("merged into ...").
"""

from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Integer,
    Join,
    Numeric,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB

from core import locks, planner, schema, sql
from core.schema import Event
from core.times import TIME_MAX_MS, TIME_MIN_MS
from segmenter.rollup import fold_sql
from segmenter.rollup.fold_sql import HI, LO, SITE, execute_counting
from segmenter.rollup.scratch import fold_affected, fold_events, fold_links, fold_touched, prepare
from segmenter.rules import definitions

events = Event.__table__
identities = schema.Identity.__table__
facts = schema.ProfileFact.__table__
sessions = schema.ProfileSession.__table__
views = schema.ProfileView.__table__
cart = schema.CartLine.__table__


@dataclass
class FoldResult:
    """What folding one chunk did."""

    events_read: int  # rows the fold read from `events`, rebuilds included
    profiles_touched: int
    profiles_rebuilt: int
    merged_exits: int


def fold_chunk(conn: Connection, site_id: int, lo: int, hi: int, now: int, run_id: int) -> FoldResult:
    """Fold the site's events with lo < id <= hi into its facts; returns a FoldResult."""
    dialect = conn.dialect.name
    params = {"site": site_id, "lo": lo, "hi": hi, "now": now, "run": run_id}
    prepare(conn)
    conn.execute(_collect_links(), params)
    conn.execute(_find_affected(), params)
    rebuilt = conn.scalar(select(func.count(fold_affected.c.profile_id.distinct())))
    conn.execute(_upsert_identities(dialect), params)
    if rebuilt:
        # Merged profiles leave their segments below: take the change log's lock before the
        # tables this transaction still has to lock (see lock_for_ordered_ids).
        locks.lock_for_ordered_ids(conn, schema.MembershipChange.__table__)
        for stmt in _forget_affected():
            conn.execute(stmt, params)
        for stmt in _load_rebuild_events(dialect):
            conn.execute(stmt, params)
    conn.execute(_load_chunk(dialect), params)
    read = conn.scalar(select(func.count()).select_from(fold_events))
    conn.execute(insert(fold_touched).from_select(["profile_id"], select(fold_events.c.profile_id).distinct()))
    planner.analyze_scratch(conn, fold_events, fold_touched)
    for stmt in fold_sql.fold_statements(dialect):
        conn.execute(stmt, params)
    merged = 0
    if rebuilt:
        merged = execute_counting(conn, fold_sql.merged_exits(dialect), params)
        conn.execute(fold_sql.forget_merged_memberships(), params)
    touched = conn.scalar(select(func.count()).select_from(fold_touched))
    return FoldResult(read, touched, rebuilt, merged)


def event_time() -> ColumnElement[int]:
    """The event's time clamped into the range that renders (core.times): a stored absurd time (an
    old database, a direct insert) folds as the nearest end, so window arithmetic never overflows."""
    at = events.c.timestamp
    return cast(case((at < TIME_MIN_MS, TIME_MIN_MS), (at > TIME_MAX_MS, TIME_MAX_MS), else_=at), BigInteger)


# --- identities ------------------------------------------------------------------------


@cache
def _collect_links():
    """The earliest link per anonymous id among the chunk's events (identify, any message
    with both ids, alias previousId -> userId)."""
    in_chunk = and_(
        events.c.site_id == SITE,
        events.c.id > LO,
        events.c.id <= HI,
        events.c.is_bot.is_(False),
        events.c.user_id.is_not(None),
    )
    both = select(
        events.c.anonymous_id.label("anonymous_id"),
        events.c.user_id,
        event_time().label("at"),
        events.c.message_id,
    ).where(in_chunk, events.c.anonymous_id.is_not(None))
    aliased = select(
        events.c.previous_id,
        events.c.user_id,
        event_time(),
        events.c.message_id,
    ).where(in_chunk, events.c.type == "alias", events.c.previous_id.is_not(None))
    links = union_all(both, aliased).subquery()
    ranked = select(
        links,
        func.row_number()
        .over(partition_by=links.c.anonymous_id, order_by=(links.c.at, links.c.message_id))
        .label("rn"),
    ).subquery()
    return insert(fold_links).from_select(
        ["anonymous_id", "user_id", "linked_at", "message_id"],
        select(ranked.c.anonymous_id, ranked.c.user_id, ranked.c.at, ranked.c.message_id).where(ranked.c.rn == 1),
    )


@cache
def _find_affected():
    """Record the profiles to rebuild because an anonymous id with folded events changes hands."""
    link, known = fold_links, identities
    changed = (
        select(
            link.c.anonymous_id,
            known.c.user_id.label("old_user"),
            link.c.user_id.label("new_user"),
            link.c.linked_at,
        )
        .select_from(link.outerjoin(known, and_(known.c.site_id == SITE, known.c.anonymous_id == link.c.anonymous_id)))
        .where(
            or_(
                known.c.user_id.is_(None),
                and_(
                    known.c.user_id != link.c.user_id,
                    fold_sql.earlier(link.c.linked_at, link.c.message_id, known.c.linked_at, known.c.message_id),
                ),
            ),
            exists().where(
                events.c.site_id == SITE,
                events.c.anonymous_id == link.c.anonymous_id,
                events.c.id <= LO,
                events.c.user_id.is_(None),
                events.c.is_bot.is_(False),
            ),
        )
        .subquery()
    )
    new_profile = literal("u:") + changed.c.new_user
    old_profile = case(
        (changed.c.old_user.is_(None), literal("a:") + changed.c.anonymous_id),
        else_=literal("u:") + changed.c.old_user,
    )
    gaining = select(new_profile, changed.c.new_user, literal(None, schema.PROFILE_ID), changed.c.linked_at)
    losing = select(old_profile, changed.c.old_user, new_profile, changed.c.linked_at)
    columns = ["profile_id", "user_id", "merged_into", "merged_at"]
    return insert(fold_affected).from_select(columns, union_all(gaining, losing))


@cache
def _upsert_identities(dialect):
    """The chunk's links into `identities`: the earliest link wins; a link is verified when a verified message
    made it or linked the same two ids (so a verified identify also vouches for an older link of the pair)."""
    link = fold_links.c
    verified = or_(
        exists().where(events.c.site_id == SITE, events.c.message_id == link.message_id, events.c.user_verified),
        exists().where(
            events.c.site_id == SITE,
            events.c.anonymous_id == link.anonymous_id,
            events.c.user_id == link.user_id,
            events.c.user_verified,
        ),
    )
    stmt = sql.dialect_insert(dialect, identities)
    stmt = stmt.from_select(
        ["site_id", "anonymous_id", "user_id", "linked_at", "message_id", "verified"],
        select(SITE, link.anonymous_id, link.user_id, link.linked_at, link.message_id, verified).where(
            link.anonymous_id.is_not(None)
        ),
    )
    new, old = stmt.excluded, identities.c
    wins = fold_sql.earlier(new.linked_at, new.message_id, old.linked_at, old.message_id)
    same_user = new.user_id == old.user_id
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "anonymous_id"],
        set_={
            "user_id": case((wins, new.user_id), else_=old.user_id),
            "linked_at": case((wins, new.linked_at), else_=old.linked_at),
            "message_id": case((wins, new.message_id), else_=old.message_id),
            "verified": or_(new.verified, and_(same_user, old.verified)),
        },
        where=or_(wins, and_(same_user, new.verified, old.verified.is_(False))),
    )
    return stmt


@cache
def _forget_affected():
    affected = select(fold_affected.c.profile_id)
    return [
        delete(table).where(table.c.site_id == SITE, table.c.profile_id.in_(affected))
        for table in (facts, sessions, views, cart)
    ]


# --- loading events --------------------------------------------------------------------


def resolved_events() -> tuple[Join, ColumnElement[str]]:
    """events LEFT JOIN identities, and each event's profile id."""
    joined = events.outerjoin(
        identities, and_(identities.c.site_id == events.c.site_id, identities.c.anonymous_id == events.c.anonymous_id)
    )
    profile = case(
        (events.c.user_id.is_not(None), literal("u:") + events.c.user_id),
        (identities.c.user_id.is_not(None), literal("u:") + identities.c.user_id),
        else_=literal("a:") + events.c.anonymous_id,
    )
    return joined, profile


PRODUCT_KEYS = ("product_id", "id", "sku", "name", "url", "category", "price", "quantity")
ORDER_KEYS = ("revenue", "total", "value")


# Bounds on each number a visitor sends, before any product or sum (integer literals: on PostgreSQL a
# float literal would turn a numeric of 400 digits into a float8, which fails).
AMOUNT_LIMIT = 10**12  # a price or revenue, in currency units: |amount| below this, else ignored
QUANTITY_MAX = 10**6  # a quantity outside 1..QUANTITY_MAX counts as 1


def _cents(amount, real):
    return case((func.abs(amount) < AMOUNT_LIMIT, cast(func.floor(real(amount) * 100 + 0.5), BigInteger)))


def _real(dialect):
    """A bounded number as a float, as SQLite holds it, so both databases round alike."""
    return (lambda value: cast(value, Float)) if dialect == "postgresql" else (lambda value: value)


def _raw(dialect, where):
    """Each event once, with its profile and its JSON parsed once (a materialized CTE): on SQLite
    each needed property extracted, on PostgreSQL the properties as jsonb."""
    joined, profile = resolved_events()
    e = events.c
    is_product = and_(e.type == "track", e.event.in_(definitions.PRODUCT_EVENTS))
    is_order = and_(e.type == "track", e.event == definitions.ORDER_COMPLETED)
    is_identify = e.type == "identify"
    columns = [
        profile.label("profile_id"),
        e.message_id,
        event_time().label("at"),
        e.type,
        case((e.type == "track", e.event)).label("event"),
        or_(e.type.in_(("page", "screen")), and_(e.type == "track", e.event.not_in(definitions.EMAIL_EVENTS))).label(
            "activity"
        ),
        e.url.label("page_url"),
        case((and_(is_identify, sql.json_is_object(dialect, e.traits)), e.traits)).label("traits"),
    ]
    if dialect == "postgresql":
        columns += [
            case((or_(is_product, is_order), cast(e.properties, JSONB))).label("props"),
            case((is_identify, cast(e.traits, JSONB))).label("traits_b"),
        ]
    else:
        columns += [
            case((is_product, func.json_extract(e.properties, f'$."{key}"'))).label(f"p_{key}") for key in PRODUCT_KEYS
        ]
        columns += [
            case((is_order, func.json_extract(e.properties, f'$."{key}"'))).label(f"p_{key}") for key in ORDER_KEYS
        ]
        columns.append(case((is_identify, func.json_extract(e.traits, '$."email"'))).label("t_email"))
    query = select(*columns).select_from(joined).where(e.site_id == SITE, e.is_bot.is_(False), where)
    return query.cte("raw").prefix_with("MATERIALIZED")


def _accessors(dialect, raw):
    """number(key) and text(key) of a property of a `raw` row; NULL when of another JSON type."""
    if dialect == "postgresql":

        def number(key, column="props"):
            kind = func.jsonb_typeof(raw.c[column].op("->")(literal(key)))
            # numeric holds any JSON number (float8 fails past 1e308, so would the fold)
            return case((kind == "number", cast(raw.c[column].op("->>")(literal(key)), Numeric)))

        def text(key, column="props"):
            kind = func.jsonb_typeof(raw.c[column].op("->")(literal(key)))
            return case((kind.in_(("string", "number")), raw.c[column].op("->>")(literal(key))))

        return number, text, lambda: text("email", "traits_b")

    def number(key):
        value = raw.c[f"p_{key}"]
        return case((func.typeof(value).in_(("integer", "real")), value))

    def text(key):
        value = raw.c[f"p_{key}"]
        return case((func.typeof(value).in_(("text", "integer", "real")), cast(value, Text)))

    email = raw.c.t_email
    return number, text, lambda: case((func.typeof(email) == "text", email))


def _load(dialect, where):
    raw = _raw(dialect, where)
    number, text, email = _accessors(dialect, raw)
    is_product = raw.c.event.in_(definitions.PRODUCT_EVENTS)
    quantity, real = number("quantity"), _real(dialect)
    columns = {
        "profile_id": raw.c.profile_id,
        "message_id": raw.c.message_id,
        "at": raw.c.at,
        "type": raw.c.type,
        "event": raw.c.event,
        "activity": raw.c.activity,
        "product_id": case(
            (is_product, func.substr(func.coalesce(text("product_id"), text("id"), text("sku")), 1, 200))
        ),
        "product_name": case((is_product, text("name"))),
        "product_url": case((is_product, func.coalesce(text("url"), raw.c.page_url))),
        "category": case((is_product, text("category"))),
        "price_cents": case((is_product, _cents(number("price"), real))),
        "quantity": case(
            (
                is_product,
                case(
                    (and_(quantity >= 1, quantity <= QUANTITY_MAX), cast(func.floor(real(quantity)), Integer)), else_=1
                ),
            )
        ),
        "revenue_cents": case(
            (
                raw.c.event == definitions.ORDER_COMPLETED,
                _cents(func.coalesce(*(number(key) for key in ORDER_KEYS)), real),
            )
        ),
        "traits": raw.c.traits,
        "email": case((raw.c.type == "identify", email())),
    }
    rows = select(*(expr.label(name) for name, expr in columns.items())).where(raw.c.profile_id.is_not(None))
    return insert(fold_events).from_select(list(columns), rows)


@cache
def _load_chunk(dialect):
    return _load(dialect, and_(events.c.id > LO, events.c.id <= HI))


def rebuild_scope() -> ColumnElement[bool]:
    """The stored events of the profiles being rebuilt (`fold_affected`): those of their user ids, and the
    anonymous ones of the anonymous ids linked to them."""
    users = select(fold_affected.c.user_id).where(fold_affected.c.user_id.is_not(None))
    linked = select(identities.c.anonymous_id).where(identities.c.site_id == SITE, identities.c.user_id.in_(users))
    return or_(events.c.user_id.in_(users), and_(events.c.user_id.is_(None), events.c.anonymous_id.in_(linked)))


@cache
def _load_rebuild_events(dialect):
    """The already-folded events of the profiles being rebuilt (two index lookups)."""
    users = select(fold_affected.c.user_id).where(fold_affected.c.user_id.is_not(None))
    linked = select(identities.c.anonymous_id).where(identities.c.site_id == SITE, identities.c.user_id.in_(users))
    return [
        _load(dialect, and_(events.c.id <= LO, events.c.user_id.in_(users))),
        _load(dialect, and_(events.c.id <= LO, events.c.user_id.is_(None), events.c.anonymous_id.in_(linked))),
    ]
