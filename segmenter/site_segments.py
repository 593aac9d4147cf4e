"""Site-defined segments: create, update and delete, each a new version checked by the grammar; every version is
kept. Saving registers the behaviours a rule counts, shared by every segment that needs them; the next rollup
backfills a new behaviour from the stored events and judges everyone against the new version."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from core import schema
from core.db import write_engine
from segmenter.rules import definitions
from segmenter.rules.grammar import AGGREGATES, check_definition, references

versions = schema.SegmentVersion.__table__
behaviours = schema.Behaviour.__table__
BUILT_IN_NAMES = tuple(rule.name for rule in definitions.BUILT_IN)
#: Every rollup judges everyone against each site-defined segment: a site keeps at most this many.
MAX_SEGMENTS = 100


class InvalidDefinition(ValueError):
    """The definition breaks the grammar: `problems` maps JSON pointers to messages."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("The segment definition is not valid.")
        self.problems = problems


class SegmentExists(ValueError):
    """A segment of that name exists already."""


class TooManySegments(ValueError):
    """The site has MAX_SEGMENTS site-defined segments already."""


class UnknownSegment(LookupError):
    """No site-defined segment of that name (built-ins are not site-defined)."""


class BuiltInSegment(ValueError):
    """Built-in segments are changed with settings, not definitions."""


def current(conn: Connection, site_id: int) -> dict[str, dict[str, Any]]:
    """The site's segments as they stand, {name: newest version}, deleted ones left out."""
    return {row["name"]: row for row in newest_versions(conn, site_id) if row["action"] != "delete"}


def newest_versions(conn: Connection, site_id: int) -> list[dict[str, Any]]:
    """The newest version of each name the site ever defined, deleted ones included, by name."""
    newest = (
        select(versions.c.name, func.max(versions.c.version).label("version"))
        .where(versions.c.site_id == site_id)
        .group_by(versions.c.name)
        .subquery()
    )
    rows = conn.execute(
        select(versions)
        .join(newest, (versions.c.name == newest.c.name) & (versions.c.version == newest.c.version))
        .where(versions.c.site_id == site_id)
        .order_by(versions.c.name)
    ).mappings()
    return [_shown(row) for row in rows]


def segments_of(engine: Engine, site_id: int) -> dict[str, dict[str, Any]]:
    """`current` on a connection of its own."""
    with engine.connect() as conn:
        return current(conn, site_id)


def history(conn: Connection, site_id: int, name: str) -> list[dict[str, Any]]:
    """Every version of a segment, oldest first; UnknownSegment if it never existed."""
    rows = conn.execute(
        select(versions).where(versions.c.site_id == site_id, versions.c.name == name).order_by(versions.c.version)
    ).mappings()
    found = [_shown(row) for row in rows]
    if not found:
        raise UnknownSegment(name)
    return found


def create(engine: Engine, site_id: int, definition: Any, by: str, now: int) -> dict[str, Any]:
    """Save a new segment (version 1, or the next version of a deleted one); returns it."""
    with write_engine(engine).begin() as conn:
        _lock(conn, site_id)
        segments = current(conn, site_id)
        if isinstance(definition, dict) and definition.get("name") in segments:
            raise SegmentExists(definition["name"])
        if len(segments) >= MAX_SEGMENTS:
            raise TooManySegments(f"This site has {MAX_SEGMENTS} segments of its own: delete one first.")
        _check(definition, segments)
        return _save(conn, site_id, definition, "create", by, now)


def update(engine: Engine, site_id: int, name: str, definition: Any, by: str, now: int) -> dict[str, Any]:
    """Replace a segment's rule (and description, requires): a new version; returns it."""
    if name in BUILT_IN_NAMES:
        raise BuiltInSegment(name)
    if isinstance(definition, dict):
        definition = {"name": name, **definition}
        kept = segments_of(engine, site_id).get(name, {}).get("description")
        if "description" not in definition and kept is not None:
            definition["description"] = kept
        if definition["name"] != name:
            raise InvalidDefinition({"/name": f"The name is {name!r} (rename by creating a new segment)."})
    with write_engine(engine).begin() as conn:
        _lock(conn, site_id)
        segments = current(conn, site_id)
        if name not in segments:
            raise UnknownSegment(name)
        _check(definition, segments, replacing=name)
        return _save(conn, site_id, definition, "update", by, now)


def delete(engine: Engine, site_id: int, name: str, by: str, now: int) -> dict[str, Any]:
    """Delete a segment: a last version without a rule. Its members exit at the next rollup; its history stays."""
    if name in BUILT_IN_NAMES:
        raise BuiltInSegment(name)
    with write_engine(engine).begin() as conn:
        _lock(conn, site_id)
        segments = current(conn, site_id)
        if name not in segments:
            raise UnknownSegment(name)
        users = sorted(other for other, segment in segments.items() if name in _references(segment))
        if users:
            raise InvalidDefinition({"/name": f"{name} is used by {', '.join(users)}: change those first."})
        return _save(conn, site_id, {"name": name}, "delete", by, now)


def behaviour_keys(rule: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The behaviours a rule counts: {event, where, property} each (property: of sum, min or max, else None)."""
    stack = [rule] if rule else []
    while stack:
        node = stack.pop()
        stack.extend(node.get("all", []) + node.get("any", []) + ([node["not"]] if "not" in node else []))
        if "event" in node:
            yield behaviour_of(node)


def key_of(behaviour: Mapping[str, Any]) -> str:
    """The canonical text of a behaviour: equal behaviours share one counter."""
    return json.dumps(
        {"event": behaviour["event"], "where": behaviour["where"], "property": behaviour["property"]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _check(definition: Any, segments: dict[str, dict[str, Any]], replacing: str | None = None) -> None:
    rules = {name: segment["rule"] for name, segment in segments.items()}
    problems = check_definition(definition, rules, BUILT_IN_NAMES, replacing)
    if problems:
        raise InvalidDefinition(problems)


def _save(conn: Connection, site_id: int, definition: dict, action: str, by: str, now: int) -> dict[str, Any]:
    name = definition["name"]
    latest = conn.scalar(
        select(func.max(versions.c.version)).where(versions.c.site_id == site_id, versions.c.name == name)
    )
    row = {
        "site_id": site_id,
        "name": name,
        "version": (latest or 0) + 1,
        "action": action,
        "description": definition.get("description"),
        "rule": definition.get("rule"),
        "requires": definition.get("requires"),
        "created_at": now,
        "created_by": by,
    }
    conn.execute(insert(versions).values(**row))
    for behaviour in [*behaviour_keys(row["rule"]), *behaviour_keys(row["requires"])]:
        register(conn, site_id, behaviour, now)
    return _shown(row)


def register(conn: Connection, site_id: int, behaviour: dict[str, Any], now: int) -> None:
    """Count `behaviour` for the site from now on (backfilled by the next rollup), unless it is counted already."""
    key = key_of(behaviour)
    known = conn.scalar(select(behaviours.c.id).where(behaviours.c.site_id == site_id, behaviours.c.key == key))
    if known is None:
        conn.execute(insert(behaviours).values(site_id=site_id, key=key, created_at=now, counted_to=0, **behaviour))


def _lock(conn: Connection, site_id: int) -> None:
    """One definition change of a site at a time (names and versions are read, then written): PostgreSQL locks
    the site's row; SQLite's IMMEDIATE transaction holds the write lock already."""
    sites = schema.Site.__table__
    query = select(sites.c.id).where(sites.c.id == site_id)
    conn.execute(query.with_for_update() if conn.dialect.name == "postgresql" else query)


def _references(segment: Mapping[str, Any]) -> set[str]:
    return references(segment["rule"]) | references(segment.get("requires") or {})


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "version": row["version"],
        "action": row["action"],
        "description": row["description"],
        "rule": row["rule"],
        "requires": row["requires"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
    }


def behaviour_of(node: Mapping[str, Any]) -> dict[str, Any]:
    """The behaviour a behaviour condition counts: {event, where, property}."""
    measured = next((node[key]["property"] for key in AGGREGATES if key in node), None)
    return {"event": node["event"], "where": node.get("where", {}), "property": measured}
