"""Tables of the collector: sites, events, bad rows, identities.

Times are stored as integer milliseconds since the Unix epoch (UTC) so that
window arithmetic in rollup SQL is the same on SQLite and PostgreSQL.
"""
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer, "sqlite")
#: For every table whose ids serve as a cursor, a watermark or a key sent out: without AUTOINCREMENT
#: SQLite hands the ids of deleted top rows out again (PostgreSQL's sequences never go back).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
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
