"""Site-defined rules in SQL: the twin of `segmenter.rules.site_meaning` (the tests hold both to the same
answers). Property filters over stored events, and whole rules over `profile_facts`, `behaviour_counts` and
`memberships`. Every condition is NULL-safe: it is true or false, never unknown, so `not` means what it says."""

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Numeric,
    Table,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)

from core import schema
from segmenter.rollup.fold_sql import NOW
from segmenter.rules.definitions import HOUR, parse_duration
from segmenter.rules.grammar import COMPARISONS, PAGE_PROPERTIES, PAGE_VIEWED
from segmenter.rules.site_meaning import AMOUNT_LIMIT, SUM_BOUND, words

events = schema.Event.__table__
facts = schema.ProfileFact.__table__
counts = schema.BehaviourCount.__table__
memberships = schema.Membership.__table__

_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def sure(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """`condition`, with unknown (NULL) read as false."""
    return func.coalesce(condition, false())


class Property:
    """One property of the current event row: its JSON kind ('string', 'number', 'true', 'false' or other),
    its text and its number, on either database."""

    def __init__(self, dialect: str, event: str, key: str):
        if event == PAGE_VIEWED and key in PAGE_PROPERTIES:  # page calls keep these in columns
            column = events.c[key]
            self.kind = case((column.is_not(None), literal("string")))
            self.text = column
            self.number = literal(None)
        elif dialect == "postgresql":
            found = func.json_extract_path(events.c.properties, literal(key))
            json_kind = func.json_typeof(found)
            text = func.json_extract_path_text(events.c.properties, literal(key))
            self.kind = case((json_kind == "boolean", text), else_=json_kind)
            self.text = text
            self.number = case((json_kind == "number", cast(text, Numeric)))
        else:
            each = func.json_each(events.c.properties).table_valued("key", "value", "type").alias("p")

            def lookup(column):
                return select(column).where(each.c.key == literal(key)).scalar_subquery()

            sqlite_kind = lookup(each.c.type)
            self.kind = case(
                (sqlite_kind == "text", "string"), (sqlite_kind.in_(("integer", "real")), "number"), else_=sqlite_kind
            )
            value = lookup(each.c.value)
            self.text = value
            self.number = case((sqlite_kind.in_(("integer", "real")), value))

    def same(self, wanted: Any) -> ColumnElement[bool]:
        """`eq`: the same JSON kind and value."""
        if isinstance(wanted, bool):
            return sure(self.kind == ("true" if wanted else "false"))
        if isinstance(wanted, int | float):
            return sure(and_(self.kind == "number", self.number == wanted))
        return sure(and_(self.kind == "string", self.text == wanted))


def event_matches(dialect: str, behaviour: Mapping[str, Any]) -> ColumnElement[bool]:
    """Whether the current `events` row is one of a behaviour's events (name and `where`)."""
    name = behaviour["event"]
    if name == PAGE_VIEWED:
        tests = [events.c.type == "page"]
    else:
        tests = [events.c.type == "track", events.c.event == name]
    for key, test in (behaviour.get("where") or {}).items():
        prop = Property(dialect, name, key)
        for op, wanted in (test if isinstance(test, dict) else {"eq": test}).items():
            if op == "eq":
                tests.append(prop.same(wanted))
            elif op == "ne":
                tests.append(not_(prop.same(wanted)))
            elif op == "in":
                tests.append(or_(*(prop.same(item) for item in wanted)))
            elif op == "prefix":
                tests.append(sure(and_(prop.kind == "string", func.substr(prop.text, 1, len(wanted)) == wanted)))
            else:
                tests.append(sure(and_(prop.kind == "number", _OPS[op](prop.number, wanted))))
    return and_(*tests)


def measured(dialect: str, behaviour: Mapping[str, Any]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(hundredths, value) of a behaviour's property on the current event row: NULL unless a number within
    ±AMOUNT_LIMIT. Rounded half up in floating point on both databases, as Python does."""
    if not behaviour.get("property"):
        return cast(null(), BigInteger), cast(null(), Float)
    number = Property(dialect, behaviour["event"], behaviour["property"]).number
    bounded = case((func.abs(number) < AMOUNT_LIMIT, number))
    real = cast(bounded, Float) if dialect == "postgresql" else bounded
    return cast(func.floor(real * 100 + 0.5), BigInteger), cast(real, Float)


class SiteRuleCompiler:
    """Compiles site-defined rules over `profile_facts` (as `f`) at the parameter `now`. `behaviour_id(node)` is
    the id of a behaviour node's counter."""

    def __init__(self, dialect: str, behaviour_id: Callable[[Mapping[str, Any]], int], f: Table = facts):
        self.dialect = dialect
        self.behaviour_id = behaviour_id
        self.f = f

    def holds(self, rule: Mapping[str, Any]) -> ColumnElement[bool]:
        if "all" in rule:
            return and_(true(), *(self.holds(inner) for inner in rule["all"]))
        if "any" in rule:
            return or_(false(), *(self.holds(inner) for inner in rule["any"]))
        if "not" in rule:
            return not_(self.holds(rule["not"]))
        if "segment" in rule:
            ref = memberships.alias("ref")  # never correlated with a memberships table of the outer query
            return exists().where(
                ref.c.site_id == self.f.c.site_id,
                ref.c.segment == rule["segment"],
                ref.c.profile_id == self.f.c.profile_id,
            )
        if "event" in rule:
            return self._behaviour(rule)
        return self._fact(rule)

    def reason(self, rule: Mapping[str, Any]) -> ColumnElement[str]:
        """The twin of `site_meaning.reason`: every clause of an `all`, the first of an `any` that holds."""
        if "all" in rule:
            parts = [self.reason(inner) for inner in rule["all"]]
            joined = parts[0]
            for part in parts[1:]:
                joined = joined + literal("; ") + part
            return joined
        if "any" in rule:
            whens = [(self.holds(inner), self.reason(inner)) for inner in rule["any"]]
            return case(*whens, else_=self.reason(rule["any"][0]))
        return literal(words(rule))

    def _behaviour(self, node: Mapping[str, Any]) -> ColumnElement[bool]:
        where = [
            counts.c.site_id == self.f.c.site_id,
            counts.c.behaviour_id == self.behaviour_id(node),
            counts.c.profile_id == self.f.c.profile_id,
        ]
        if node.get("within"):
            where.append(counts.c.hour >= (NOW - parse_duration(node["within"])) // HOUR)
        if "sum" in node:
            total = func.coalesce(func.sum(counts.c.sum_hundredths), 0)
            value = case((total > SUM_BOUND, SUM_BOUND), (total < -SUM_BOUND, -SUM_BOUND), else_=total)
            kind, scale = "sum", 100
        elif "min" in node:
            value, kind, scale = func.min(counts.c.min_value), "min", 1
        elif "max" in node:
            value, kind, scale = func.max(counts.c.max_value), "max", 1
        else:
            value, kind, scale = func.coalesce(func.sum(counts.c.count), 0), "count", 1
        measure = select(value).where(*where).scalar_subquery()
        bounds = node.get(kind, {"gte": 1})
        tests = [_compare(measure, op, bound * scale) for op, bound in bounds.items() if op in COMPARISONS]
        return and_(true(), *tests)

    def _fact(self, node: Mapping[str, Any]) -> ColumnElement[bool]:
        value = self.f.c[node["fact"]]
        tests = []
        for op, wanted in node.items():
            if op == "fact":
                continue
            if op == "present":
                tests.append(value.is_not(None) if wanted else value.is_(None))
            elif op == "within":
                tests.append(sure(NOW - value < parse_duration(wanted)))
            elif op == "older_than":
                tests.append(sure(NOW - value >= parse_duration(wanted)))
            elif op == "prefix":
                tests.append(sure(func.substr(value, 1, len(wanted)) == wanted) if _is_text(value) else false())
            elif op == "in":
                tests.append(or_(false(), *(self._same(value, item) for item in wanted)))
            elif op in ("eq", "ne"):
                same = self._same(value, wanted)
                tests.append(same if op == "eq" else not_(same))
            else:
                tests.append(_compare(value, op, wanted))
        return and_(true(), *tests)

    def _same(self, value: ColumnElement[Any], wanted: Any) -> ColumnElement[bool]:
        """`eq` of a fact: a number fact equals numbers only, a text fact strings only."""
        if isinstance(wanted, bool) or (isinstance(wanted, int | float)) is _is_text(value):
            return false()
        return sure(value == wanted)


def _compare(value: ColumnElement[Any], op: str, bound: Any) -> ColumnElement[bool]:
    """A number against a bound, as `site_meaning.compares`: NULL holds none but `ne`."""
    if op == "ne":
        return not_(sure(value == bound))
    return sure(_OPS[op](value, bound))


def _is_text(column: ColumnElement[Any]) -> bool:
    return column.type.python_type is str
