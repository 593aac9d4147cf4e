"""Dashboard sign-ins: a random token in an HttpOnly cookie, its SHA-256 in `dashboard_sessions`.

The server keeps the state, so signing out (or `cohortly sites rotate-key`) ends a session for good, and the
cookie is never a key that works anywhere else. No signing secret is needed: a token is 256 random bits.
"""

import hashlib
import hmac
import secrets

from sqlalchemy import delete, insert, select

from core.schema import DashboardSession, Site
from core.sites import hash_key

sessions = DashboardSession.__table__
sites = Site.__table__


def start(engine, site_id, now_ms, lifetime_s):
    """A new session of `site_id` lasting `lifetime_s`; returns its token (the cookie's value)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        # A site's expired sessions are dropped here, so the table holds live ones only (plus a few).
        conn.execute(delete(sessions).where(sessions.c.site_id == site_id, sessions.c.expires_at <= now_ms))
        conn.execute(
            insert(sessions).values(
                site_id=site_id, token_hash=hash_key(token), created_at=now_ms, expires_at=now_ms + lifetime_s * 1000
            )
        )
    return token


def site_of(engine, token, now_ms):
    """The site a live session token signs in to, as a dict; None for an unknown, ended or expired one."""
    if not well_formed(token):
        return None
    query = (
        select(sites)
        .join(sessions, sessions.c.site_id == sites.c.id)
        .where(sessions.c.token_hash == hash_key(token), sessions.c.expires_at > now_ms)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def end(engine, token):
    """End a session for good (sign-out); unknown tokens are ignored."""
    if well_formed(token):
        with engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == hash_key(token)))


def csrf_token(token):
    """The anti-forgery token of a session's forms: derived from the session token, which a page of another
    origin can neither read nor set."""
    return hmac.new(token.encode(), b"cohortly dashboard csrf", hashlib.sha256).hexdigest()


def new_token():
    """A random token for the signed-out sign-in form (double-submit: a cookie and a hidden field)."""
    return secrets.token_urlsafe(32)


def same(expected, given):
    """Whether two tokens are equal, in constant time; an empty or missing one never is."""
    return well_formed(expected) and well_formed(given) and hmac.compare_digest(expected, given)


def well_formed(token):
    """Tokens are short URL-safe ASCII; anything else is refused before it reaches SQL or hashing."""
    return isinstance(token, str) and 0 < len(token) <= 128 and token.isascii() and token.isprintable()
