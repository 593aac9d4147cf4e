"""The SQL twin of the rules agrees with the pure rules on every boundary case of tests/unit/segmenter/test_rules.py."""

from sqlalchemy import insert, select

from core import schema
from segmenter.rules.definitions import BUILT_IN, RULES_BY_NAME
from segmenter.rules.meaning import evaluate_rule, next_check_at
from segmenter.rules.sql import RuleCompiler
from tests.unit.segmenter.test_rules import CASES, NOW, S


def _insert_case(conn, site_id, profile_id, facts):
    row = {
        "site_id": site_id,
        "profile_id": profile_id,
        "event_count": 0,
        "sessions": 0,
        "page_views": 0,
        "product_views": 0,
        "cart_items": 0,
        "cart_value_cents": 0,
        "order_count": 0,
        "revenue_cents": 0,
        "email_opens": 0,
        "email_clicks": 0,
        "next_check_at": 0,
    }
    row.update({k: v for k, v in facts.items() if k != "product_view_times"})
    conn.execute(insert(schema.ProfileFact.__table__).values(row))
    for n, at in enumerate(facts.get("product_view_times", [])):
        conn.execute(
            insert(schema.ProfileView.__table__).values(
                site_id=site_id, profile_id=profile_id, message_id=f"{profile_id}-{n}", at=at
            )
        )


def test_sql_twin_agrees_on_every_case(engine, site):
    """One SELECT per rule over all cases: member, reason, enter/exit time, next check."""
    facts_table = schema.ProfileFact.__table__
    with engine.begin() as conn:
        for n, (_segment, _case, facts, _status, _at) in enumerate(CASES):
            _insert_case(conn, site["site_id"], f"p{n:03d}", facts)
    compiler = RuleCompiler(engine.dialect.name, S, NOW)
    with engine.connect() as conn:
        for n, (segment, case, facts, _status, _at) in enumerate(CASES):
            rule = RULES_BY_NAME[segment]
            row = conn.execute(
                select(
                    compiler.member(rule),
                    compiler.enter_at(rule),
                    compiler.exit_reason(rule),
                    compiler.exit_at(rule),
                    compiler.next_check_at(BUILT_IN),
                ).where(facts_table.c.profile_id == f"p{n:03d}")
            ).one()
            verdict = evaluate_rule(rule, facts, S, NOW)
            member, enter_at, exit_reason, exit_at, check = row
            assert bool(member) == verdict.member, (segment, case)
            assert (enter_at if verdict.member else exit_at) == verdict.at, (segment, case)
            if not verdict.member:
                assert exit_reason == verdict.reason, (segment, case)
            assert check == next_check_at(facts, S, NOW), (segment, case)
