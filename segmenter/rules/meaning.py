"""Pure evaluation of segment rules over one profile's facts at a given `now`.

`facts` is a dict with the columns of `profile_facts` plus `product_view_times`
(the kept product view times). No I/O: the rollup runs the SQL twin of this module
(`segmenter.rules.sql`), and the tests hold the two to the same answers.

Boundaries: `within(t, d)` holds while `now - t < d`; `older_than(t, d)` from
`now - t >= d`. So at `now == t + d` a profile has just left a window / just passed a wait.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from segmenter.rules.definitions import BUILT_IN, Condition, Rule, describe, failure_reason, resolve

MEMBER = "member"
NOT_MEMBER = "not_member"
LEFT_OUT = "left_out"  # below the rule's minimum data: not judged


@dataclass(frozen=True)
class Verdict:
    """Whether a profile is in a segment, why, and since when.

    `at` is when the verdict became true: for members the exact time the last
    condition started to hold, where the facts determine it (a wait passing, the
    event that matched), else `now`; for others the time the first failing
    condition stopped holding (a window closing, the event that ended it), else `now`.
    Never after `now`.
    """

    status: str
    reason: str
    at: int

    @property
    def member(self) -> bool:
        return self.status == MEMBER


def fact_value(facts: Mapping[str, Any], name: str, settings: Mapping[str, int]) -> int | None:
    """A fact of the profile; `nth_product_view_at` is the N-th latest product view."""
    if name == "nth_product_view_at":
        times = sorted(facts.get("product_view_times") or (), reverse=True)
        wanted = settings["browse_min_views"]
        return times[wanted - 1] if len(times) >= wanted else None
    return facts.get(name)


def holds(condition: Condition, facts: Mapping[str, Any], settings: Mapping[str, int], now: int) -> bool:
    """True when `condition` holds for `facts` at `now`."""
    op, arg = condition.op, condition.arg
    if op == "any":
        return any(holds(inner, facts, settings, now) for inner in arg)
    value = fact_value(facts, condition.field, settings)
    if op == "not_within":
        return value is None or value <= now - resolve(arg, settings)
    if value is None:
        return False
    if op == "present":
        return True
    if op == "at_least":
        return value >= resolve(arg, settings)
    if op == "equals":
        return value == resolve(arg, settings)
    if op == "within":
        return value > now - resolve(arg, settings)
    if op == "older_than":
        return value <= now - resolve(arg, settings)
    if op == "after":
        others = (fact_value(facts, name, settings) for name in arg)
        return all(other is None or value > other for other in others)
    raise ValueError(f"Unknown operator {op!r}")


def true_since(condition: Condition, facts: Mapping[str, Any], settings: Mapping[str, int]) -> int | None:
    """When a holding condition started to hold, if the facts tell; else None."""
    op = condition.op
    value = fact_value(facts, condition.field, settings) if op != "any" else None
    if value is None:
        return None
    if op in ("within", "after"):
        return value
    if op in ("older_than", "not_within"):
        return value + resolve(condition.arg, settings)
    return None


def false_since(condition: Condition, facts: Mapping[str, Any], settings: Mapping[str, int]) -> int | None:
    """When a failing condition stopped holding, if the facts tell; else None."""
    op = condition.op
    value = fact_value(facts, condition.field, settings) if op != "any" else None
    if value is None:
        return None
    if op == "within":
        return value + resolve(condition.arg, settings)
    if op in ("older_than", "not_within"):
        return value
    if op == "after":
        blockers = [
            other
            for other in (fact_value(facts, name, settings) for name in condition.arg)
            if other is not None and other >= value
        ]
        return min(blockers) if blockers else None
    return None


def crossings(condition: Condition, facts: Mapping[str, Any], settings: Mapping[str, int]) -> list[int]:
    """The times at which `condition` flips by itself as time passes (no new events)."""
    if condition.op == "any":
        return [time for inner in condition.arg for time in crossings(inner, facts, settings)]
    if condition.op not in ("within", "older_than", "not_within"):
        return []
    value = fact_value(facts, condition.field, settings)
    return [] if value is None else [value + resolve(condition.arg, settings)]


def evaluate_rule(rule: Rule, facts: Mapping[str, Any], settings: Mapping[str, int], now: int) -> Verdict:
    """The Verdict of one rule for one profile at `now`."""
    for condition in rule.requires:
        if not holds(condition, facts, settings, now):
            return _failed(LEFT_OUT, "not enough data: ", condition, facts, settings, now)
    for condition in rule.conditions:
        if not holds(condition, facts, settings, now):
            return _failed(NOT_MEMBER, "", condition, facts, settings, now)
    starts = [true_since(c, facts, settings) for c in rule.requires + rule.conditions]
    starts = [start for start in starts if start is not None]
    at = min(max(starts), now) if starts else now
    return Verdict(MEMBER, describe(rule, settings), at)


def _failed(status, prefix, condition, facts, settings, now):
    missing = condition.op != "any" and fact_value(facts, condition.field, settings) is None
    since = false_since(condition, facts, settings)
    at = now if since is None else min(since, now)
    return Verdict(status, prefix + failure_reason(condition, settings, missing), at)


def evaluate_segments(
    facts: Mapping[str, Any], settings: Mapping[str, int], now: int, rules: Iterable[Rule] = BUILT_IN
) -> dict[str, Verdict]:
    """{segment name: Verdict} for one profile.

    >>> from segmenter.rules.definitions import default_settings
    >>> evaluate_segments({"last_seen_at": 0}, default_settings(), 1000)["active"].member
    True
    """
    return {rule.name: evaluate_rule(rule, facts, settings, now) for rule in rules}


def next_check_at(
    facts: Mapping[str, Any], settings: Mapping[str, int], now: int, rules: Iterable[Rule] = BUILT_IN
) -> int | None:
    """The earliest time after `now` at which any verdict may change without new events."""
    times = [
        time
        for rule in rules
        for condition in rule.requires + rule.conditions
        for time in crossings(condition, facts, settings)
        if time > now
    ]
    return min(times) if times else None
