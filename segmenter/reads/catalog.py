"""Reads and small writes of the segmenter: segments, members, changes, profiles, runs, settings.

The later API and webhooks are meant to call these; each returns plain dicts.
"""

from sqlalchemy import and_, func, inspect, select

from core import schema, sites
from segmenter import site_segments
from segmenter.rules import definitions
from segmenter.rules.settings import change_settings, load_settings, settings_schema

facts = schema.ProfileFact.__table__
memberships = schema.Membership.__table__
changes = schema.MembershipChange.__table__
runs = schema.RollupRun.__table__
identities = schema.Identity.__table__
views = schema.ProfileView.__table__
PAGE_MAX = 1000


class UnknownSegment(LookupError):
    """No built-in segment has that name."""


def has_schema(engine):
    """True when the segmenter's tables exist (`cohortly db upgrade` creates them)."""
    return inspect(engine).has_table("rollup_state")


def site_settings(engine, site_id):
    """The effective segment settings of a site: {name: value}, durations in ms."""
    site = sites.find_site(engine, site_id=site_id)
    return load_settings(site["settings"])


def configure_site(engine, site_id, assignments=None, unset=()):
    """Set (`{"cart_abandon_after": "2h"}`) or unset segment settings; returns the effective ones.

    Raises marshmallow.ValidationError for unknown names or bad values.
    """
    site = sites.find_site(engine, site_id=site_id)
    stored = change_settings(site["settings"], assignments, unset)
    sites.update_site_settings(engine, site_id, stored)
    return load_settings(stored)


def identity_secret(engine, site_id, rotate=False):
    """The site's identity secret, made when it has none (or `rotate`), with identity verification turned on."""
    table = sites.sites
    with engine.begin() as conn:
        secret = conn.scalar(select(table.c.identity_secret).where(table.c.id == site_id))
        if secret is None or rotate:
            secret = sites.new_secret()
            conn.execute(table.update().where(table.c.id == site_id).values(identity_secret=secret))
    configure_site(engine, site_id, {"identity_verification": "true"})
    return secret


def describe_settings(settings):
    """Settings as text, the way they are written (`2h`, `7d`, `10`)."""
    return settings_schema.dump(settings)


def list_segments(engine, site_id):
    """Every segment of a site: name, kind, description, members, too_small, min_size."""
    settings = site_settings(engine, site_id)
    with engine.connect() as conn:
        return describe_segments(conn, site_id, settings)


def describe_segments(conn, site_id, settings):
    """`list_segments` on an open connection, with the site's settings already loaded: the built-ins, then the
    site-defined segments (with `kind` "site", their `version`, `rule` and `requires`)."""
    sizes = dict(
        conn.execute(
            select(memberships.c.segment, func.count())
            .where(memberships.c.site_id == site_id)
            .group_by(memberships.c.segment)
        ).all()
    )
    minimum = settings["min_segment_size"]

    def sized(name, **shown):
        members = sizes.get(name, 0)
        return {"name": name, **shown, "members": members, "too_small": members < minimum, "min_size": minimum}

    built_in = [
        sized(rule.name, kind="built_in", description=definitions.describe(rule, settings))
        for rule in definitions.BUILT_IN
    ]
    defined = [
        sized(
            name,
            kind="site",
            description=segment["description"] or "",
            version=segment["version"],
            rule=segment["rule"],
            requires=segment["requires"],
        )
        for name, segment in site_segments.current(conn, site_id).items()
    ]
    return built_in + defined


def segment_exists(conn, site_id, name):
    """Whether the site has a segment `name` now: a built-in one, or one it defined and has not deleted."""
    return name in definitions.RULES_BY_NAME or name in site_segments.current(conn, site_id)


def count_members(conn, site_id, segment, up_to):
    """A segment's member count, counted no further than `up_to`: enough to compare with a minimum, in O(up_to)."""
    first = (
        select(memberships.c.profile_id)
        .where(memberships.c.site_id == site_id, memberships.c.segment == segment)
        .limit(up_to)
        .subquery()
    )
    return conn.scalar(select(func.count()).select_from(first))


def segment_members(engine, site_id, segment, after=None, limit=100):
    """Members of a segment ordered by profile id, `limit` from the one after `after` (a cursor).

    Each member: profile_id, user_id, email, traits, entered_at, context.
    """
    with engine.connect() as conn:
        if not segment_exists(conn, site_id, segment):
            raise UnknownSegment(segment)
    m, f = memberships, facts
    query = (
        select(m.c.profile_id, f.c.user_id, f.c.email, f.c.traits, m.c.entered_at, m.c.context)
        .select_from(m.outerjoin(f, and_(f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id)))
        .where(m.c.site_id == site_id, m.c.segment == segment)
        .order_by(m.c.profile_id)
        .limit(min(limit, PAGE_MAX))
    )
    if after is not None:
        query = query.where(m.c.profile_id > after)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def resolve_profile_id(engine, site_id, any_id, verified_links_only=False):
    """The profile id for `u:...`/`a:...`, a user id or an anonymous id (following its link; with
    `verified_links_only`, only a verified one: what the public write key may follow)."""
    with engine.connect() as conn:
        if any_id.startswith(("u:", "a:")):
            candidates = [any_id]
        else:
            candidates = ["u:" + any_id, "a:" + any_id]
        for candidate in candidates:
            if conn.scalar(
                select(facts.c.profile_id).where(facts.c.site_id == site_id, facts.c.profile_id == candidate)
            ):
                return candidate
        anonymous = any_id[2:] if any_id.startswith("a:") else any_id
        link = select(identities.c.user_id).where(
            identities.c.site_id == site_id, identities.c.anonymous_id == anonymous
        )
        if verified_links_only:
            link = link.where(identities.c.verified.is_(True))
        user = conn.scalar(link)
    return None if user is None else "u:" + user


def profile(engine, site_id, any_id):
    """A profile's facts, linked anonymous ids, segments and recent product views; None if unknown."""
    profile_id = resolve_profile_id(engine, site_id, any_id)
    if profile_id is None:
        return None
    with engine.connect() as conn:
        row = (
            conn.execute(select(facts).where(facts.c.site_id == site_id, facts.c.profile_id == profile_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        found = dict(row)
        found.pop("next_check_at")
        user_id = found["user_id"]
        found["anonymous_ids"] = (
            []
            if user_id is None
            else list(
                conn.scalars(
                    select(identities.c.anonymous_id)
                    .where(identities.c.site_id == site_id, identities.c.user_id == user_id)
                    .order_by(identities.c.anonymous_id)
                )
            )
        )
        found["segments"] = [
            dict(r)
            for r in conn.execute(
                select(memberships.c.segment, memberships.c.entered_at, memberships.c.context)
                .where(memberships.c.site_id == site_id, memberships.c.profile_id == profile_id)
                .order_by(memberships.c.segment)
            ).mappings()
        ]
        found["recent_views"] = [
            dict(r)
            for r in conn.execute(
                select(views.c.at, views.c.product_id, views.c.name, views.c.url, views.c.category, views.c.price_cents)
                .where(views.c.site_id == site_id, views.c.profile_id == profile_id)
                .order_by(views.c.at.desc(), views.c.message_id.desc())
            ).mappings()
        ]
    return found


def recent_runs(engine, site_id=None, limit=20):
    """The newest rollup runs (of one site, or all), newest first, as dicts."""
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if site_id is not None:
        query = query.where(runs.c.site_id == site_id)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
