"""The whole schema: one table definition each, in the order data flows (the Alembic migrations are beside it).

Ingestion: sites, events, bad rows, dashboard sessions. The segmenter: identities, profile facts, sessions,
views, cart lines, memberships and their history, rollups, webhooks and their deliveries, erasures.

Times are stored as integer milliseconds since the Unix epoch (UTC) so that window arithmetic in rollup SQL is
the same on SQLite and PostgreSQL; money is in integer cents so that sums commute exactly. A profile is keyed
by `profile_id`: `u:<userId>` for identified people, `a:<anonymousId>` for anonymous ones (an anonymous id
linked to a user id folds into `u:<userId>`).
"""

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Table, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer, "sqlite")
#: For every table whose ids serve as a cursor, a watermark or a key sent out: without AUTOINCREMENT
#: SQLite hands the ids of deleted top rows out again (PostgreSQL's sequences never go back).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    __table__: ClassVar[Table]  # every model here maps a Table (SQLAlchemy types it as any FromClause)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    write_key: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    origins: Mapped[list[Any]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: The HMAC key of identity verification (`cohortly sites identity-secret`); None until made.
    identity_secret: Mapped[str | None] = mapped_column(String(64))


class Event(Base):
    """One accepted Segment message; append-only. `id` is the rollup watermark."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ux_events_site_message", "site_id", "message_id", unique=True),
        Index("ix_events_site_anon", "site_id", "anonymous_id"),
        Index("ix_events_site_user", "site_id", "user_id"),
        Index("ix_events_site_received", "site_id", "received_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    previous_id: Mapped[str | None] = mapped_column(String(200))
    group_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any] | None] = mapped_column()
    traits: Mapped[dict[str, Any] | None] = mapped_column()
    context: Mapped[dict[str, Any] | None] = mapped_column()
    browser: Mapped[str | None] = mapped_column(String(100))
    os: Mapped[str | None] = mapped_column(String(100))
    device: Mapped[str | None] = mapped_column(String(16))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    ip: Mapped[str | None] = mapped_column(String(64))
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)
    #: The userId came with a valid `userHash` on a site with identity verification on (collector/identity.py).
    user_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class BadRow(Base):
    """A message rejected inside an otherwise valid request, with the reason."""

    __tablename__ = "bad_rows"
    __table_args__ = (Index("ix_bad_rows_site", "site_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    received_at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[dict[str, Any]] = mapped_column()
    payload: Mapped[str] = mapped_column(Text)


class DashboardSession(Base):
    """A signed-in dashboard browser. Its cookie holds a random token; only the token's SHA-256 is stored, so
    a leaked table signs nobody in. Signing out deletes the row; rotating the site's API key deletes them all."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_site", "site_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


PROFILE_ID = String(210)
FK_SITE = "sites.id"

# The fold reads a site's events by id range; the collector's indexes do not cover that.
Index("ix_events_site_id", Event.site_id, Event.id)


class Identity(Base):
    """An anonymous id (or an aliased previous id) linked to a user id: the earliest link wins."""

    __tablename__ = "identities"
    __table_args__ = (Index("ix_identities_user", "site_id", "user_id", "anonymous_id"),)

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    anonymous_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    linked_at: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(200))
    #: A verified message made this link (identity verification); only such a link is followed from an
    #: anonymous id by the write key and by privacy requests.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ProfileFact(Base):
    """One row per profile: commutative aggregates of its (non-bot) events."""

    __tablename__ = "profile_facts"
    __table_args__ = (Index("ix_profile_facts_due", "site_id", "next_check_at"),)

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_at: Mapped[int | None] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    page_views: Mapped[int] = mapped_column(Integer, default=0)
    product_views: Mapped[int] = mapped_column(Integer, default=0)
    last_product_viewed_at: Mapped[int | None] = mapped_column(BigInteger)
    last_product_message_id: Mapped[str | None] = mapped_column(String(200))
    last_product_id: Mapped[str | None] = mapped_column(Text)
    last_product_name: Mapped[str | None] = mapped_column(Text)
    last_product_url: Mapped[str | None] = mapped_column(Text)
    last_product_category: Mapped[str | None] = mapped_column(Text)
    last_product_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    top_categories: Mapped[list[Any] | None] = mapped_column()
    cart_items: Mapped[int] = mapped_column(Integer, default=0)
    cart_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    last_cart_add_at: Mapped[int | None] = mapped_column(BigInteger)
    last_checkout_at: Mapped[int | None] = mapped_column(BigInteger)
    first_order_at: Mapped[int | None] = mapped_column(BigInteger)
    last_order_at: Mapped[int | None] = mapped_column(BigInteger)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    email_opens: Mapped[int] = mapped_column(Integer, default=0)
    email_clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_email_at: Mapped[int | None] = mapped_column(BigInteger)
    last_email_engaged_at: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(Text)
    email_at: Mapped[int | None] = mapped_column(BigInteger)
    email_message_id: Mapped[str | None] = mapped_column(String(200))
    traits: Mapped[dict[str, Any] | None] = mapped_column()
    traits_at: Mapped[int | None] = mapped_column(BigInteger)
    traits_message_id: Mapped[str | None] = mapped_column(String(200))
    #: When a verdict of this profile may next change by time alone; 0 = changed, check now.
    next_check_at: Mapped[int | None] = mapped_column(BigInteger)


class ProfileSession(Base):
    """A session: a run of a profile's events with gaps of at most SESSION_GAP."""

    __tablename__ = "profile_sessions"

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    started_at: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ended_at: Mapped[int] = mapped_column(BigInteger)


class ProfileView(Base):
    """One of a profile's latest RECENT_VIEWS_KEPT `Product Viewed` events."""

    __tablename__ = "profile_views"
    __table_args__ = (Index("ix_profile_views_time", "site_id", "profile_id", "at"),)

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    price_cents: Mapped[int | None] = mapped_column(BigInteger)


class CartLine(Base):
    """The latest `Product Added` / `Product Removed` of a product by a profile."""

    __tablename__ = "cart_lines"

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    added: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    price_cents: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)


class Membership(Base):
    """A profile currently in a segment, since when, with what context."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_profile", "site_id", "profile_id"),)

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    entered_at: Mapped[int] = mapped_column(BigInteger)
    context: Mapped[dict[str, Any] | None] = mapped_column()


class MembershipChange(Base):
    """Every enter and exit. `id` ascends in commit order: use it as a feed cursor."""

    __tablename__ = "membership_changes"
    __table_args__ = (
        Index("ix_membership_changes_site", "site_id", "id"),
        Index("ix_membership_changes_profile", "site_id", "profile_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(64))
    profile_id: Mapped[str] = mapped_column(PROFILE_ID)
    change: Mapped[str] = mapped_column(String(8))  # "enter" | "exit"
    at: Mapped[int] = mapped_column(BigInteger)  # the threshold crossing, where known
    detected_at: Mapped[int] = mapped_column(BigInteger)  # the rollup's now
    reason: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any] | None] = mapped_column()
    run_id: Mapped[int | None] = mapped_column(BigInteger)


class RollupRun(Base):
    """One rollup of one site: its range of events, counts, changes and errors."""

    __tablename__ = "rollup_runs"
    __table_args__ = (Index("ix_rollup_runs_site", "site_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed | interrupted
    started_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    now: Mapped[int | None] = mapped_column(BigInteger)
    watermark_from: Mapped[int] = mapped_column(BigInteger)
    watermark_to: Mapped[int] = mapped_column(BigInteger)
    events_folded: Mapped[int] = mapped_column(BigInteger, default=0)
    events_read: Mapped[int] = mapped_column(BigInteger, default=0)
    profiles_evaluated: Mapped[int] = mapped_column(BigInteger, default=0)
    enters: Mapped[int] = mapped_column(Integer, default=0)
    exits: Mapped[int] = mapped_column(Integer, default=0)
    first_change_id: Mapped[int | None] = mapped_column(BigInteger)
    last_change_id: Mapped[int | None] = mapped_column(BigInteger)
    segments: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class RollupState(Base):
    """Per site: the last folded event id and the settings the memberships were judged with."""

    __tablename__ = "rollup_state"

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    settings_hash: Mapped[str | None] = mapped_column(String(64))


class Webhook(Base):
    """A receiver of enter/exit changes; `cursor` is the last change id queued for it."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_site", "site_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    segments: Mapped[list[Any] | None] = mapped_column()  # None: every segment
    changes: Mapped[list[Any]] = mapped_column()  # ["enter", "exit"]
    secret: Mapped[str] = mapped_column(String(200))  # kept to sign with (HMAC needs it)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # A delivery pass's lease (wall-clock ms): only its holder POSTs this webhook's changes.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[int | None] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One change to deliver to one webhook; its id pair is the idempotency key."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_hook", "webhook_id", "id"),
        Index("ux_webhook_deliveries_change", "webhook_id", "change_id", unique=True),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    change_id: Mapped[int] = mapped_column(ForeignKey("membership_changes.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed | skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)


class Erasure(Base):
    """The audit line of an erasure request: when, and how many rows went, never who."""

    __tablename__ = "erasures"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    erased_at: Mapped[int] = mapped_column(BigInteger)
    counts: Mapped[dict[str, Any]] = mapped_column()


class SegmentVersion(Base):
    """One version of a site-defined segment: created, updated (a new rule) or deleted (no rule). The newest
    version of a name is the segment as it stands; every version is kept."""

    __tablename__ = "segment_versions"
    __table_args__ = (Index("ux_segment_versions_name", "site_id", "name", "version", unique=True), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))  # create | update | delete
    description: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[dict[str, Any] | None] = mapped_column()
    requires: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: Who made the change: "api" (the site's API key) or "cli".
    created_by: Mapped[str] = mapped_column(String(200))
    #: When a rollup first judged everyone against this version (its changes carry "definition vN-1 → vN").
    judged_at: Mapped[int | None] = mapped_column(BigInteger)


class Behaviour(Base):
    """What a site counts per profile for its segments: events named `event` whose properties match `where`,
    with the sum, minimum and maximum of `property`. Shared by every segment that needs it."""

    __tablename__ = "behaviours"
    __table_args__ = (Index("ux_behaviours_key", "site_id", "key", unique=True), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"))
    #: The canonical JSON of (event, where, property): one behaviour per key.
    key: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(200))
    where: Mapped[dict[str, Any]] = mapped_column()
    property: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: Events up to this id are counted; a new behaviour starts at 0 and is backfilled by the next rollup.
    counted_to: Mapped[int] = mapped_column(BigInteger, default=0)


class BehaviourCount(Base):
    """A behaviour's matching events of one profile in one hour: how many, and the sum (in hundredths), minimum
    and maximum of the behaviour's property. Folding adds and compares, so chunks may come in any order."""

    __tablename__ = "behaviour_counts"
    __table_args__ = (Index("ix_behaviour_counts_profile", "site_id", "profile_id"),)

    site_id: Mapped[int] = mapped_column(ForeignKey(FK_SITE, ondelete="CASCADE"), primary_key=True)
    behaviour_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("behaviours.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[str] = mapped_column(PROFILE_ID, primary_key=True)
    #: Hours since the epoch (UTC): windows are answered to the hour.
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    sum_hundredths: Mapped[int | None] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
