"""A rule's preview: who it would hold now, without saving anything or waiting for a rollup.

Judged over the events the last rollup folded (the state every way out shows). Behaviours the site does not
count yet are counted from those events inside the preview's transaction, which is rolled back: so the size
equals the size after the next rollup when no events arrive in between. With the name of an existing segment,
`enters` and `exits` are the changes against its members now. The sample follows the site's policy.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select, true

from core import locks, schema
from core.db import write_engine
from segmenter import policy, site_segments
from segmenter.reads.members import add_anonymous_ids
from segmenter.rollup import behaviours
from segmenter.rules.grammar import check_definition
from segmenter.rules.site_sql import SiteRuleCompiler

facts = schema.ProfileFact.__table__
memberships = schema.Membership.__table__
state = schema.RollupState.__table__
SAMPLE = 10


class Busy(RuntimeError):
    """The site's rollup is running: a preview would read a half-folded state."""


def preview(engine: Engine, site_id: int, body: Any, settings: Mapping[str, Any], now: int) -> dict[str, Any]:
    """{size, too_small, sample, sample_withheld, enters, exits} of `body` = {"rule", "requires"?, "name"?}."""
    if not isinstance(body, dict):
        raise site_segments.InvalidDefinition({"": "A preview is a JSON object with rule (requires, name)."})
    with locks.rollup_lock(engine, site_id) as held:
        if not held:
            raise Busy("A rollup of this site is running: preview again in a moment.")
        with write_engine(engine).connect() as conn, conn.begin() as transaction:
            definition, compared = _checked(conn, site_id, body)
            watermark = conn.scalar(select(state.c.watermark).where(state.c.site_id == site_id)) or 0
            rule, requires = definition["rule"], definition.get("requires")
            for behaviour in [*site_segments.behaviour_keys(rule), *site_segments.behaviour_keys(requires)]:
                site_segments.register(conn, site_id, behaviour, now)
            behaviours.catch_up(conn, site_id, watermark)
            counters = behaviours.ids_by_key(conn, site_id)
            compiler = SiteRuleCompiler(
                conn.dialect.name, lambda node: counters[site_segments.key_of(site_segments.behaviour_of(node))]
            )
            judged = compiler.holds(requires) if requires else true()
            member = and_(judged, compiler.holds(rule))
            found = _counts(conn, site_id, member, judged, compiler.holds(rule), compared, now)
            refused = policy.refusal(settings, found["size"])
            sample = [] if refused else _sample(conn, site_id, member, settings, now)
            transaction.rollback()
    return {
        **found,
        "too_small": found["size"] < settings["min_segment_size"],
        "sample": sample,
        "sample_withheld": refused,
    }


def _checked(conn, site_id, body):
    """The definition to judge and the segment to compare with; InvalidDefinition when either is wrong."""
    segments = site_segments.current(conn, site_id)
    name = body.get("name")
    known = isinstance(name, str) and (name in segments or name in site_segments.BUILT_IN_NAMES)
    if name is not None and not known:
        raise site_segments.InvalidDefinition({"/name": f"No segment named {name!r} to compare with."})
    placeholder = name if name in segments else _free_name(segments)
    definition = {"name": placeholder, **{key: body[key] for key in ("rule", "requires") if key in body}}
    rules = {other: segment["rule"] for other, segment in segments.items()}
    problems = check_definition(definition, rules, site_segments.BUILT_IN_NAMES, placeholder)
    problems.pop("/name", None)
    for key in set(body) - {"name", "rule", "requires"}:
        problems["/" + key] = "A preview takes rule, requires and name."
    if problems:
        raise site_segments.InvalidDefinition(problems)
    return definition, name


def _free_name(segments):
    """A name no segment has, to check a rule that has none yet."""
    name, number = "previewed", 1
    while name in segments or name in site_segments.BUILT_IN_NAMES:
        number += 1
        name = f"previewed_{number}"
    return name


def _counts(conn, site_id, member, judged, holds, compared, now):
    params = {"now": now}
    mine = facts.c.site_id == site_id
    size = conn.scalar(select(func.count()).where(mine, member), params)
    if compared is None:
        return {"size": size, "enters": None, "exits": None}
    m = memberships
    in_now = exists().where(
        m.c.site_id == facts.c.site_id, m.c.segment == compared, m.c.profile_id == facts.c.profile_id
    )
    enters = conn.scalar(select(func.count()).where(mine, member, ~in_now), params)
    exits = conn.scalar(select(func.count()).where(mine, in_now, judged, ~holds), params)
    return {"size": size, "enters": enters, "exits": exits}


def _sample(conn, site_id, member, settings, now):
    """Up to SAMPLE member records (entered_at and context are those of a member not yet in)."""
    rows = conn.execute(
        select(facts.c.profile_id, facts.c.user_id, facts.c.email, facts.c.traits)
        .where(facts.c.site_id == site_id, member)
        .order_by(facts.c.profile_id)
        .limit(SAMPLE * 10),
        {"now": now},
    ).mappings()
    shown = list(policy.shown_members(settings, ({**row, "entered_at": None, "context": None} for row in rows)))
    shown = shown[:SAMPLE]
    add_anonymous_ids(conn, site_id, shown)
    return shown
