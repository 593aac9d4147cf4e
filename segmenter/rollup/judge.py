"""Judging the due profiles of a site against every rule, in set-based SQL.

A profile is due when its facts changed (`next_check_at = 0`) or when a time threshold
of one of its rules has passed (`next_check_at <= now`); no other profile can change
verdict, so a rollup's cost follows the new events and the passing thresholds, not
the stored history. A batch of due profiles is copied into the scratch table `judge_due`
once; every rule's statements read that. Each enter and exit is logged in
`membership_changes`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    update,
)

from core import locks, planner, schema, sql
from segmenter import site_segments
from segmenter.rollup import behaviours
from segmenter.rollup.fold_sql import NOW, RUN, SITE, execute_counting
from segmenter.rollup.scratch import JUDGING, judge_due, prepare
from segmenter.rules import definitions, site_meaning
from segmenter.rules.grammar import references
from segmenter.rules.site_sql import SiteRuleCompiler
from segmenter.rules.sql import RuleCompiler

facts = schema.ProfileFact.__table__
memberships = schema.Membership.__table__
changes = schema.MembershipChange.__table__
BEFORE = bindparam("before", type_=BigInteger)  # the largest change id before this rule's changes
LIMIT = bindparam("limit", type_=Integer)  # due profiles judged in one batch
CHANGE_COLUMNS = ["site_id", "segment", "profile_id", "change", "at", "detected_at", "reason", "context", "run_id"]


@dataclass
class Evaluation:
    """What judging a site's due profiles did."""

    profiles_evaluated: int = 0
    enters: int = 0
    exits: int = 0
    per_segment: dict = field(default_factory=dict)  # name -> {"enters": n, "exits": n}


def judge_site(
    conn: Connection,
    site_id: int,
    settings: Mapping[str, int],
    now: int,
    run_id: int,
    rule_list: Sequence[definitions.Rule] = definitions.BUILT_IN,
    limit: int | None = None,
) -> Evaluation:
    """Move the site's due profiles (at most `limit` of them, if given) in and out of segments.

    Judged profiles are no longer due (their next check is in the future, or never), so calling
    this again judges the next batch; a batch smaller than `limit` was the last."""
    dialect = conn.dialect.name
    params = {"site": site_id, "now": now, "run": run_id, "limit": limit}
    key = tuple(sorted(settings.items()))
    prepare(conn, JUDGING)
    result = Evaluation(profiles_evaluated=execute_counting(conn, _copy_due(dialect, key, limit is not None), params))
    if not result.profiles_evaluated:
        return result
    planner.analyze_scratch(conn, judge_due)
    locks.lock_for_ordered_ids(conn, changes)
    for rule in rule_list:
        params["before"] = conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))
        enter, leave, drop, refresh, add = _statements(dialect, rule, key)
        entered = execute_counting(conn, enter, params)
        exited = execute_counting(conn, leave, params)
        if exited:
            conn.execute(drop, params)
        conn.execute(refresh, params)
        if entered:
            conn.execute(add, params)
        result.per_segment[rule.name] = {"enters": entered, "exits": exited}
        result.enters += entered
        result.exits += exited
    conn.execute(_reschedule(dialect, tuple(rule_list), key), params)
    return result


def make_everyone_due(conn: Connection, site_id: int) -> None:
    """Mark every profile of the site for judging (after its settings or the rules changed)."""
    conn.execute(update(facts).where(facts.c.site_id == site_id).values(next_check_at=0))


@cache
def _copy_due(dialect, settings_key, limited):
    """Copy the due profiles' facts into `judge_due`, with the N-th latest product view looked up once."""
    nth_view = RuleCompiler(dialect, dict(settings_key)).value("nth_product_view_at")
    due = select(facts.c.profile_id).where(facts.c.site_id == SITE, facts.c.next_check_at <= NOW)
    if limited:  # any `limit` of them, straight off the index: the lookup runs for these rows only
        due = due.limit(LIMIT)
    copied = select(*facts.columns, nth_view).where(facts.c.site_id == SITE, facts.c.profile_id.in_(due))
    return insert(judge_due).from_select([*(column.name for column in facts.columns), "nth_product_view_at"], copied)


@cache
def _reschedule(dialect, rule_list, settings_key):
    compiler = RuleCompiler(dialect, dict(settings_key), f=judge_due)
    return (
        update(facts)
        .where(
            facts.c.site_id == SITE,
            facts.c.profile_id == judge_due.c.profile_id,
        )
        .values(next_check_at=compiler.next_check_at(rule_list))
    )


@cache
def _statements(dialect, rule, settings_key):
    """enter, leave, drop the leavers, refresh the stayers' context, add the enterers (of `judge_due`)."""
    compiler = RuleCompiler(dialect, dict(settings_key), f=judge_due)
    f, m = judge_due, memberships
    member = compiler.member(rule)
    same = and_(m.c.site_id == SITE, m.c.segment == rule.name, m.c.profile_id == f.c.profile_id)
    entering = (
        select(
            f.c.site_id,
            literal(rule.name),
            f.c.profile_id,
            literal("enter"),
            compiler.enter_at(rule),
            NOW,
            literal(definitions.describe(rule, compiler.settings)),
            compiler.context(rule),
            RUN,
        )
        .where(member, ~exists().where(same))
        .order_by(f.c.profile_id)
    )
    leaving = (
        select(
            m.c.site_id,
            m.c.segment,
            m.c.profile_id,
            literal("exit"),
            sql.greatest(dialect, compiler.exit_at(rule), m.c.entered_at),
            NOW,
            compiler.exit_reason(rule),
            m.c.context,
            RUN,
        )
        .select_from(m.join(f, f.c.profile_id == m.c.profile_id))
        .where(
            m.c.site_id == SITE,
            m.c.segment == rule.name,
            not_(member),
        )
        .order_by(m.c.profile_id)
    )
    this_rule = and_(changes.c.id > BEFORE, changes.c.segment == rule.name, changes.c.site_id == SITE)
    gone = select(changes.c.profile_id).where(this_rule, changes.c.change == "exit")
    drop = delete(m).where(m.c.site_id == SITE, m.c.segment == rule.name, m.c.profile_id.in_(gone))
    # Members that stay carry the current context: the cart as it is now.
    context = select(compiler.context(rule)).where(f.c.profile_id == m.c.profile_id).scalar_subquery()
    refresh = (
        update(m)
        .where(m.c.site_id == SITE, m.c.segment == rule.name, m.c.profile_id.in_(select(f.c.profile_id)))
        .values(context=context)
    )
    new = select(changes.c.site_id, changes.c.segment, changes.c.profile_id, changes.c.at, changes.c.context).where(
        this_rule, changes.c.change == "enter"
    )
    add = insert(m).from_select(["site_id", "segment", "profile_id", "entered_at", "context"], new)
    return (
        insert(changes).from_select(CHANGE_COLUMNS, entering),
        insert(changes).from_select(CHANGE_COLUMNS, leaving),
        drop,
        refresh,
        add,
    )


def segment_sizes(conn: Connection, site_id: int) -> dict[str, int]:
    """{segment: members} of a site."""
    rows = conn.execute(
        select(memberships.c.segment, func.count())
        .where(memberships.c.site_id == site_id)
        .group_by(memberships.c.segment)
    )
    return dict(rows.all())


# --- site-defined segments ------------------------------------------------------------------------------
versions = schema.SegmentVersion.__table__


def judge_defined(conn: Connection, site_id: int, now: int, run_id: int) -> Evaluation:
    """Judge every profile of the site against each site-defined segment (those another refers to first), and
    let the members of deleted segments go. A version judged for the first time gives its changes the reason
    `definition vN → vN+1` and the time of the edit."""
    dialect = conn.dialect.name
    defined = site_segments.current(conn, site_id)
    result = Evaluation()
    params = {"site": site_id, "now": now, "run": run_id}
    counters = behaviours.ids_by_key(conn, site_id)
    compiler = SiteRuleCompiler(dialect, lambda node: counters[site_segments.key_of(site_segments.behaviour_of(node))])
    locks.lock_for_ordered_ids(conn, changes)
    for name in _in_reference_order(defined):
        segment = defined[name]
        words = site_meaning.words(segment["rule"])
        first = _first_judgment(conn, site_id, segment)
        at = literal(segment["created_at"], BigInteger) if first else NOW
        note = "" if not first else ("defined (v1): " if segment["version"] == 1 else f"{first}: ")
        judged = compiler.holds(segment["requires"]) if segment["requires"] else literal(True)
        member = compiler.holds(segment["rule"])
        why = literal(note) + compiler.reason(segment["rule"])
        entered, exited = _move(conn, params, name, judged, member, at, why, note + "no longer: " + words)
        result.per_segment[name] = {"enters": entered, "exits": exited}
        result.enters += entered
        result.exits += exited
        if first:
            conn.execute(
                update(versions)
                .where(
                    versions.c.site_id == site_id,
                    versions.c.name == name,
                    versions.c.version == segment["version"],
                )
                .values(judged_at=now)
            )
    for name, version in _deleted_with_members(conn, site_id, set(defined)):
        gone = f"segment deleted (v{version})"
        _, exited = _move(conn, params, name, literal(True), literal(False), NOW, literal(""), gone)
        result.exits += exited
    return result


def _move(conn, params, name, judged, member, at, enter_reason, exit_reason):
    """Enter the judged profiles that are members and not yet in; exit the judged members no longer members."""
    f, m = facts, memberships
    params = {**params, "before": conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))}
    in_segment = exists().where(m.c.site_id == f.c.site_id, m.c.segment == name, m.c.profile_id == f.c.profile_id)
    entering = (
        select(f.c.site_id, literal(name), f.c.profile_id, literal("enter"), at, NOW, enter_reason, null(), RUN)
        .where(f.c.site_id == SITE, judged, member, ~in_segment)
        .order_by(f.c.profile_id)
    )
    leaving = (
        select(
            m.c.site_id, m.c.segment, m.c.profile_id, literal("exit"), at, NOW, literal(exit_reason), m.c.context, RUN
        )
        .select_from(m.outerjoin(f, and_(f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id)))
        .where(m.c.site_id == SITE, m.c.segment == name, or_(f.c.profile_id.is_(None), and_(judged, not_(member))))
        .order_by(m.c.profile_id)
    )
    entered = execute_counting(conn, insert(changes).from_select(CHANGE_COLUMNS, entering), params)
    exited = execute_counting(conn, insert(changes).from_select(CHANGE_COLUMNS, leaving), params)
    this = and_(changes.c.id > BEFORE, changes.c.segment == name, changes.c.site_id == SITE)
    if exited:
        gone = select(changes.c.profile_id).where(this, changes.c.change == "exit")
        conn.execute(delete(m).where(m.c.site_id == SITE, m.c.segment == name, m.c.profile_id.in_(gone)), params)
    if entered:
        new = select(changes.c.site_id, changes.c.segment, changes.c.profile_id, changes.c.at, changes.c.context)
        conn.execute(
            insert(m).from_select(
                ["site_id", "segment", "profile_id", "entered_at", "context"],
                new.where(this, changes.c.change == "enter"),
            ),
            params,
        )
    return entered, exited


def _first_judgment(conn, site_id, segment):
    """ "" unless this version has not been judged yet: then "definition vN → vN+1" (truthy)."""
    judged_at = conn.scalar(
        select(versions.c.judged_at).where(
            versions.c.site_id == site_id, versions.c.name == segment["name"], versions.c.version == segment["version"]
        )
    )
    if judged_at is not None:
        return ""
    return f"definition v{segment['version'] - 1} → v{segment['version']}"


def _in_reference_order(defined):
    """The names of the site-defined segments, each after the ones it refers to."""
    order, seen = [], set()

    def visit(name):
        if name in seen or name not in defined:
            return
        seen.add(name)
        segment = defined[name]
        for other in sorted(references(segment["rule"]) | references(segment["requires"] or {})):
            visit(other)
        order.append(name)

    for name in sorted(defined):
        visit(name)
    return order


def _deleted_with_members(conn, site_id, defined):
    """(name, version) of each deleted site-defined segment that still has members."""
    holding = set(conn.scalars(select(memberships.c.segment).where(memberships.c.site_id == site_id).distinct()).all())
    return [
        (row["name"], row["version"])
        for row in site_segments.newest_versions(conn, site_id)
        if row["action"] == "delete" and row["name"] in holding and row["name"] not in defined
    ]
