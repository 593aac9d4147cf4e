"""What a site-defined rule means, in plain Python: the twin of `segmenter.rules.site_sql`. Pure; `now` is passed.

A profile is given as `facts`: the columns of `profile_facts`, plus `"behaviours"` ({behaviour key: [(hour,
count, sum in hundredths, min, max), ...]}) and `"segments"` (the names of the segments it is in now).

- **Property filters** (`where`) hold for an event when each property matches. A plain value means `eq`.
  `eq`, `in`: same JSON type and value (numbers compare as numbers, `true` is not `1`). `ne`: anything else,
  a missing property included (no NULL trap). `prefix`: a string starting with it. `gt`, `gte`, `lt`, `lte`: a
  number that compares so.
- **Behaviours** add up the matching events of the hours in the window: `within` d counts the hours from the
  one holding `now - d` on (so up to an hour more than d), and without `within`, all history. `count` defaults to
  `{"gte": 1}`; `sum` is kept in hundredths (each value rounded half up) and compared with the bound × 100, and
  is 0 for no events; `min` and `max` of no events hold no comparison but `ne`.
- **Facts**: a missing fact holds no comparison and no window, except `ne` and `present: false`. `within` d
  holds when `now - t < d`, `older_than` d when `now - t >= d` (as the built-ins).
- **Segments**: a member of that segment now.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from segmenter.rules.definitions import HOUR, parse_duration
from segmenter.rules.grammar import COMPARISONS

#: Names the counter of a behaviour condition.
KeyOf = Callable[[Mapping[str, Any]], Any]
#: Numbers of a property outside ±this are ignored by sums, minimums and maximums (as money is by the fold).
AMOUNT_LIMIT = 10**12
SUM_BOUND = 10**15  # a sum in hundredths stays within ±this (exact as a SQLite float)


def is_number(value: Any) -> bool:
    """A JSON number (a bool is not one, though Python says True == 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(value: Any, wanted: Any) -> bool:
    """`eq`: the same JSON type and value."""
    if is_number(wanted):
        return is_number(value) and value == wanted
    if isinstance(wanted, bool):
        return isinstance(value, bool) and value is wanted
    return isinstance(value, str) and value == wanted


def compares(value: Any, op: str, bound: Any) -> bool:
    """A number against a bound: gt, gte, lt, lte, eq, ne (None and non-numbers hold none but ne)."""
    if op == "ne":
        return not (is_number(value) and value == bound)
    if not is_number(value):
        return False
    return {
        "eq": value == bound,
        "gt": value > bound,
        "gte": value >= bound,
        "lt": value < bound,
        "lte": value <= bound,
    }[op]


def matches(where: Mapping[str, Any], properties: Mapping[str, Any]) -> bool:
    """Whether an event's properties pass a behaviour's `where`."""
    for key, test in where.items():
        value = properties.get(key) if isinstance(properties, Mapping) else None
        present = isinstance(properties, Mapping) and key in properties
        if not isinstance(test, dict):
            test = {"eq": test}
        for op, wanted in test.items():
            if op == "eq" and not (present and same(value, wanted)):
                return False
            if op == "ne" and present and same(value, wanted):
                return False
            if op == "in" and not (present and any(same(value, item) for item in wanted)):
                return False
            if op == "prefix" and not (isinstance(value, str) and value.startswith(wanted)):
                return False
            if op in ("gt", "gte", "lt", "lte") and not compares(value, op, wanted):
                return False
    return True


def hundredths(value: Any) -> int | None:
    """A property's value as summed: in hundredths, rounded half up; None when not a bounded number."""
    if not is_number(value) or not abs(value) < AMOUNT_LIMIT:
        return None
    return int((value * 100 + 0.5) // 1)


def first_hour(within: str | None, now: int) -> int | None:
    """The first hour a window counts (hours since the epoch), or None for all history."""
    return None if within is None else (now - parse_duration(within)) // HOUR


def measure(node: Mapping[str, Any], rows: Iterable[tuple], now: int) -> tuple[str, Any]:
    """(what is compared, its value) of a behaviour: count, or sum / min / max of its property."""
    start = first_hour(node.get("within"), now)
    rows = [row for row in rows if start is None or row[0] >= start]
    if "sum" in node:  # in hundredths: compared with the bound × 100, as SQL does
        total = sum(row[2] or 0 for row in rows)
        return "sum", max(-SUM_BOUND, min(SUM_BOUND, total))
    if "min" in node:
        values = [row[3] for row in rows if row[3] is not None]
        return "min", min(values) if values else None
    if "max" in node:
        values = [row[4] for row in rows if row[4] is not None]
        return "max", max(values) if values else None
    return "count", sum(row[1] for row in rows)


def holds(rule: Mapping[str, Any], facts: Mapping[str, Any], now: int, key_of: KeyOf) -> bool:
    """Whether a profile satisfies a site-defined rule at `now`. `key_of(node)` names a behaviour's counter."""
    if "all" in rule:
        return all(holds(inner, facts, now, key_of) for inner in rule["all"])
    if "any" in rule:
        return any(holds(inner, facts, now, key_of) for inner in rule["any"])
    if "not" in rule:
        return not holds(rule["not"], facts, now, key_of)
    if "segment" in rule:
        return rule["segment"] in facts.get("segments", ())
    if "event" in rule:
        kind, value = measure(rule, facts.get("behaviours", {}).get(key_of(rule), ()), now)
        bounds = rule.get(kind, {"gte": 1}) if kind == "count" else rule[kind]
        scale = 100 if kind == "sum" else 1
        return all(compares(value, op, bound * scale) for op, bound in bounds.items() if op in COMPARISONS)
    return fact_holds(rule, facts.get(rule["fact"]), now)


def fact_holds(rule: Mapping[str, Any], value: Any, now: int) -> bool:
    """A fact condition: every operator given holds."""
    for op, wanted in rule.items():
        if op == "fact":
            continue
        if op == "present":
            ok = (value is not None) is wanted
        elif op == "within":
            ok = value is not None and now - value < parse_duration(wanted)
        elif op == "older_than":
            ok = value is not None and now - value >= parse_duration(wanted)
        elif op == "prefix":
            ok = isinstance(value, str) and value.startswith(wanted)
        elif op == "in":
            ok = value is not None and any(same(value, item) for item in wanted)
        elif op in ("eq", "ne") and not is_number(wanted):
            ok = (value is not None and same(value, wanted)) is (op == "eq")
        else:
            ok = compares(value, op, wanted)
        if not ok:
            return False
    return True


_WORDS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def words(rule: Mapping[str, Any]) -> str:
    """A rule in words, for reasons: "Product Viewed where category = Shoes, at least 3 times in the last 14d"."""
    if "all" in rule:
        return "; ".join(words(inner) for inner in rule["all"])
    if "any" in rule:
        return "(" + " or ".join(words(inner) for inner in rule["any"]) + ")"
    if "not" in rule:
        return "not (" + words(rule["not"]) + ")"
    if "segment" in rule:
        return f"in {rule['segment']}"
    if "event" in rule:
        return _behaviour_words(rule)
    shown = []
    for op, wanted in rule.items():
        if op == "fact":
            continue
        if op == "present":
            shown.append("known" if wanted else "unknown")
        elif op == "within":
            shown.append(f"within the last {wanted}")
        elif op == "older_than":
            shown.append(f"more than {wanted} ago")
        elif op == "in":
            shown.append("in " + ", ".join(map(str, wanted)))
        elif op == "prefix":
            shown.append(f"starting {wanted}")
        else:
            shown.append(f"{_WORDS[op]} {wanted}")
    return f"{rule['fact']} " + " and ".join(shown)


def _behaviour_words(rule: Mapping[str, Any]) -> str:
    filters = []
    for key, test in (rule.get("where") or {}).items():
        for op, wanted in (test if isinstance(test, dict) else {"eq": test}).items():
            if op == "in":
                filters.append(f"{key} in {', '.join(map(str, wanted))}")
            elif op == "prefix":
                filters.append(f"{key} starting {wanted}")
            else:
                filters.append(f"{key} {_WORDS[op]} {wanted}")
    what = rule["event"] + (" where " + " and ".join(filters) if filters else "")
    window = f" in the last {rule['within']}" if rule.get("within") else ""
    for kind in ("sum", "min", "max"):
        if kind in rule:
            bounds = " and ".join(f"{_WORDS[op]} {v}" for op, v in rule[kind].items() if op != "property")
            return f"{kind} of {rule[kind]['property']} over {what}{window} {bounds}"
    count = rule.get("count", {"gte": 1})
    if count == {"eq": 0}:
        return f"no {what}{window}"
    if count == {"gte": 1}:
        return f"{what}{window}"
    times = " and ".join(f"{_WORDS[op]} {v}" for op, v in count.items())
    return f"{what}{window}, {times} times"


def reason(rule: Mapping[str, Any], facts: Mapping[str, Any], now: int, key_of: KeyOf) -> str:
    """Why a member is in, in words: every clause of an `all`, the first clause of an `any` that holds."""
    if "all" in rule:
        return "; ".join(reason(inner, facts, now, key_of) for inner in rule["all"])
    if "any" in rule:
        held = next((inner for inner in rule["any"] if holds(inner, facts, now, key_of)), rule["any"][0])
        return reason(held, facts, now, key_of)
    return words(rule)
