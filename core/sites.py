"""Sites and their keys: create, find, list, settings, origins, key rotation; and the database ping of /healthz.

A site's public write key is stored as is (it sits in every visitor's browser); its secret API key only as a
SHA-256.
"""

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from core.schema import DashboardSession, Site
from core.times import now_ms

sites = Site.__table__
dashboard_sessions = DashboardSession.__table__


class SiteExists(Exception):
    """A site with that name exists already."""


def hash_key(api_key: str) -> str:
    """How an API key is stored: its SHA-256 (keys are random, so no salt is needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_write_key() -> str:
    """A fresh public write key."""
    return "wk_" + secrets.token_urlsafe(18)


def new_api_key() -> str:
    """A fresh secret API key (256 random bits)."""
    return "sk_" + secrets.token_urlsafe(32)


def new_secret() -> str:
    """A fresh per-site identity secret (`collector.identity`) (the HMAC key; 256 random bits)."""
    return "ids_" + secrets.token_urlsafe(32)


def create_site(engine: Engine, name: str, origins: Iterable[str]) -> dict[str, Any]:
    """Create a site; returns its id, public write key and secret API key (the only time it is seen)."""
    write_key = new_write_key()
    api_key = new_api_key()
    with engine.begin() as conn:
        if conn.scalar(select(sites.c.id).where(sites.c.name == name)) is not None:
            raise SiteExists(f"A site named {name!r} exists already.")
        site_id = conn.execute(
            insert(sites).values(
                name=name,
                write_key=write_key,
                api_key_hash=hash_key(api_key),
                origins=list(origins),
                settings={},
                created_at=now_ms(),
            )
        ).inserted_primary_key[0]
    return {"site_id": site_id, "name": name, "write_key": write_key, "api_key": api_key}


def list_sites(engine: Engine) -> list[dict[str, Any]]:
    """Every site with its id, name, write key, origins and settings (never the API key)."""
    columns = (sites.c.id, sites.c.name, sites.c.write_key, sites.c.origins, sites.c.settings, sites.c.created_at)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(*columns).order_by(sites.c.id))]


def find_site(
    bind: Engine | Connection,
    *,
    write_key: str | None = None,
    api_key: str | None = None,
    name: str | None = None,
    site_id: int | None = None,
) -> dict[str, Any] | None:
    """The site with the given write key, API key, name or id, as a dict; None when unknown.

    `bind` is an engine, or a connection the caller goes on using (one per API request)."""
    if any(isinstance(value, str) and not storable(value) for value in (write_key, api_key, name)):
        return None  # no stored key or name holds a NUL or a lone surrogate
    if write_key is not None:
        where = sites.c.write_key == write_key
    elif api_key is not None:
        where = sites.c.api_key_hash == hash_key(api_key)
    elif name is not None:
        where = sites.c.name == name
    else:
        where = sites.c.id == site_id
    query = select(sites).where(where)
    if isinstance(bind, Connection):
        row = bind.execute(query).first()
    else:
        with bind.connect() as conn:
            row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def storable(text: str) -> bool:
    """Whether both databases can hold (and compare) `text`: no NUL, valid UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def update_site_settings(engine: Engine, site_id: int, settings: dict[str, Any]) -> None:
    """Replace a site's settings dict."""
    with engine.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == site_id).values(settings=settings))


def update_site_origins(engine: Engine, site_id: int, origins: Iterable[str]) -> None:
    """Replace the origins a site's browsers may send from."""
    with engine.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == site_id).values(origins=list(origins)))


def rotate_keys(engine: Engine, site_id: int, write_key: bool = False) -> dict[str, str]:
    """Give a site a new API key (and, with `write_key`, a new write key); the old ones stop working at once
    and every dashboard session of the site ends. Returns the new keys: the only time the API key is seen."""
    keys = {"api_key": new_api_key()}
    values = {"api_key_hash": hash_key(keys["api_key"])}
    if write_key:
        keys["write_key"] = values["write_key"] = new_write_key()
    with engine.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == site_id).values(**values))
        conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.site_id == site_id))
    return keys


def ping(engine: Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
