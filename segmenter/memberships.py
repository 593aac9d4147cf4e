"""Judging the due profiles of a site against every rule, in set-based SQL.

A profile is due when its facts changed (`next_check_at = 0`) or when a time threshold
of one of its rules has passed (`next_check_at <= now`); no other profile can change
verdict, so a rollup's cost follows the new events and the passing thresholds, not
the stored history. Each enter and exit is logged in `membership_changes`.
"""
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, exists, func, insert, literal, not_, select, update

from collector import dialects
from segmenter import models, rules
from segmenter.aggregates import execute_counting
from segmenter.queries import RuleCompiler

facts = models.ProfileFact.__table__
memberships = models.Membership.__table__
changes = models.MembershipChange.__table__
CHANGE_COLUMNS = ["site_id", "segment", "profile_id", "change", "at", "detected_at", "reason", "context", "run_id"]


@dataclass
class Evaluation:
    """What judging a site's due profiles did."""

    profiles_evaluated: int = 0
    enters: int = 0
    exits: int = 0
    per_segment: dict = field(default_factory=dict)  # name -> {"enters": n, "exits": n}


def evaluate_site(conn, site_id, settings, now, run_id, rule_list=rules.BUILT_IN, everyone=False):
    """Move the site's due profiles (all of them with `everyone`) in and out of segments."""
    dialect = conn.dialect.name
    if everyone:
        conn.execute(update(facts).where(facts.c.site_id == site_id).values(next_check_at=0))
    due = and_(facts.c.site_id == site_id, facts.c.next_check_at <= now)
    result = Evaluation(profiles_evaluated=conn.scalar(select(func.count()).where(due)))
    if not result.profiles_evaluated:
        return result
    dialects.lock_for_ordered_ids(conn, changes)
    compiler = RuleCompiler(dialect, settings, now)
    for rule in rule_list:
        entered, exited = _judge(conn, compiler, rule, site_id, due, now, run_id)
        result.per_segment[rule.name] = {"enters": entered, "exits": exited}
        result.enters += entered
        result.exits += exited
    conn.execute(update(facts).where(due).values(next_check_at=compiler.next_check_at(rule_list)))
    return result


def _judge(conn, compiler, rule, site_id, due, now, run_id):
    f, m = facts, memberships
    member = compiler.member(rule)
    same = and_(m.c.site_id == f.c.site_id, m.c.segment == rule.name, m.c.profile_id == f.c.profile_id)
    before = conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))

    entering = select(
        f.c.site_id, literal(rule.name), f.c.profile_id, literal("enter"), compiler.enter_at(rule), literal(now),
        literal(rules.describe(rule, compiler.settings)), compiler.context(rule), literal(run_id),
    ).where(due, member, ~exists().where(same)).order_by(f.c.profile_id)
    entered = execute_counting(conn, insert(changes).from_select(CHANGE_COLUMNS, entering))

    leaving = select(
        m.c.site_id, m.c.segment, m.c.profile_id, literal("exit"),
        dialects.greatest(compiler.dialect, compiler.exit_at(rule), m.c.entered_at), literal(now),
        compiler.exit_reason(rule), m.c.context, literal(run_id),
    ).select_from(m.join(f, and_(f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id))).where(
        m.c.site_id == site_id, m.c.segment == rule.name, due, not_(member),
    ).order_by(m.c.profile_id)
    exited = execute_counting(conn, insert(changes).from_select(CHANGE_COLUMNS, leaving))

    this_rule = and_(changes.c.id > before, changes.c.segment == rule.name, changes.c.site_id == site_id)
    if exited:
        gone = select(changes.c.profile_id).where(this_rule, changes.c.change == "exit")
        conn.execute(delete(m).where(m.c.site_id == site_id, m.c.segment == rule.name, m.c.profile_id.in_(gone)))
    # Members that stay (and those just in) carry the current context: the cart as it is now.
    context = select(compiler.context(rule)).where(
        f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id).scalar_subquery()
    conn.execute(
        update(m)
        .where(m.c.site_id == site_id, m.c.segment == rule.name, m.c.profile_id.in_(select(f.c.profile_id).where(due)))
        .values(context=context)
    )
    if entered:
        new = select(changes.c.site_id, changes.c.segment, changes.c.profile_id, changes.c.at, changes.c.context).where(
            this_rule, changes.c.change == "enter")
        conn.execute(insert(m).from_select(["site_id", "segment", "profile_id", "entered_at", "context"], new))
    return entered, exited


def segment_sizes(conn, site_id):
    """{segment: members} of a site."""
    rows = conn.execute(
        select(memberships.c.segment, func.count()).where(memberships.c.site_id == site_id).group_by(memberships.c.segment)
    )
    return dict(rows.all())
