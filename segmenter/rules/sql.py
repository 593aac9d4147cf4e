"""The rules of `segmenter.rules.definitions` compiled to SQL expressions over `profile_facts`.

The twin of `segmenter.rules.meaning`: the same operators, the same NULL handling, the same
reasons and times (the tests hold both to one table of cases). Also the JSON context of
each kind of segment.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, not_, or_, select

from core import schema, sql
from segmenter.rollup.fold_sql import NOW
from segmenter.rules import definitions

facts = schema.ProfileFact.__table__
views = schema.ProfileView.__table__
cart = schema.CartLine.__table__
CART_LINES_SHOWN = 50


class RuleCompiler:
    """Compiles conditions for one site's `settings` at `now`, over the facts table `f`."""

    def __init__(self, dialect, settings, now=None, f=facts):
        """`now` (ms) is inlined when given; else statements take it as the parameter `now`."""
        self.dialect = dialect
        self.settings = settings
        self.now = NOW if now is None else literal(now)
        self.f = f

    # facts ---------------------------------------------------------------------------
    def value(self, name: str) -> ColumnElement[Any]:
        """A fact as SQL; `nth_product_view_at` is a lookup of the N-th latest kept view."""
        if name == "nth_product_view_at":
            if name in self.f.c:  # computed once into the judging table
                return self.f.c[name]
            return (
                select(views.c.at)
                .where(views.c.site_id == self.f.c.site_id, views.c.profile_id == self.f.c.profile_id)
                .order_by(views.c.at.desc(), views.c.message_id.desc())
                .limit(1)
                .offset(self.settings["browse_min_views"] - 1)
                .scalar_subquery()
            )
        return self.f.c[name]

    def arg(self, condition: definitions.Condition) -> ColumnElement[Any]:
        return literal(definitions.resolve(condition.arg, self.settings))

    # conditions ----------------------------------------------------------------------
    def holds(self, condition: definitions.Condition) -> ColumnElement[bool]:
        """The condition as a boolean that is never NULL."""
        op = condition.op
        if op == "any":
            return or_(*(self.holds(inner) for inner in condition.arg))
        value = self.value(condition.field)
        if op == "not_within":
            return or_(value.is_(None), value <= self.now - self.arg(condition))
        present = value.is_not(None)
        if op == "present":
            return present
        if op == "at_least":
            return and_(present, value >= self.arg(condition))
        if op == "equals":
            return and_(present, value == self.arg(condition))
        if op == "within":
            return and_(present, value > self.now - self.arg(condition))
        if op == "older_than":
            return and_(present, value <= self.now - self.arg(condition))
        if op == "after":
            others = (self.value(name) for name in condition.arg)
            return and_(present, *(or_(other.is_(None), value > other) for other in others))
        raise ValueError(f"Unknown operator {op!r}")

    def true_since(self, condition: definitions.Condition) -> ColumnElement[Any] | None:
        op = condition.op
        if op in ("within", "after"):
            return self.value(condition.field)
        if op in ("older_than", "not_within"):
            return self.value(condition.field) + self.arg(condition)
        return None

    def false_since(self, condition: definitions.Condition) -> ColumnElement[Any] | None:
        op = condition.op
        if op == "within":
            return self.value(condition.field) + self.arg(condition)
        if op in ("older_than", "not_within"):
            return self.value(condition.field)
        if op == "after":
            value = self.value(condition.field)
            blockers = [
                case((and_(value.is_not(None), other >= value), other))
                for other in (self.value(name) for name in condition.arg)
            ]
            return sql.least(self.dialect, *blockers)
        return None

    def crossings(self, condition: definitions.Condition) -> list[ColumnElement[Any]]:
        if condition.op == "any":
            return [time for inner in condition.arg for time in self.crossings(inner)]
        if condition.op in ("within", "older_than", "not_within"):
            return [self.value(condition.field) + self.arg(condition)]
        return []

    # rules ---------------------------------------------------------------------------
    def member(self, rule: definitions.Rule) -> ColumnElement[bool]:
        """True for the profiles in the segment."""
        return and_(*(self.holds(condition) for condition in rule.requires + rule.conditions))

    def enter_at(self, rule: definitions.Rule) -> ColumnElement[Any]:
        """When a member's last condition started to hold, where known, else now (at most now)."""
        starts = [self.true_since(c) for c in rule.requires + rule.conditions]
        starts = [start for start in starts if start is not None]
        if not starts:
            return self.now
        latest = sql.greatest(self.dialect, *starts)
        return sql.least(self.dialect, func.coalesce(latest, self.now), self.now)

    def _failures(self, rule):
        for condition in rule.requires:
            yield "not enough data: ", condition
        for condition in rule.conditions:
            yield "", condition

    def exit_reason(self, rule: definitions.Rule) -> ColumnElement[str]:
        """Why a non-member is out: the first failing condition, in the words of evaluate.py."""
        whens = []
        for prefix, condition in self._failures(rule):
            reason: ColumnElement[str] = literal(prefix + definitions.failure_reason(condition, self.settings))
            if condition.op not in ("any", "not_within"):
                missing = literal(prefix + definitions.failure_reason(condition, self.settings, missing=True))
                reason = case((self.value(condition.field).is_(None), missing), else_=reason)
            whens.append((not_(self.holds(condition)), reason))
        return case(*whens, else_=literal(""))

    def exit_at(self, rule: definitions.Rule) -> ColumnElement[Any]:
        """When the first failing condition stopped holding, where known, else now (at most now)."""
        whens = []
        for _prefix, condition in self._failures(rule):
            since = self.false_since(condition)
            whens.append((not_(self.holds(condition)), self.now if since is None else func.coalesce(since, self.now)))
        return sql.least(self.dialect, case(*whens, else_=self.now), self.now)

    def next_check_at(self, rule_list: Iterable[definitions.Rule]) -> ColumnElement[Any]:
        """The earliest future time at which any of the rules may flip for a profile, or NULL."""
        future = [
            case((time > self.now, time))
            for rule in rule_list
            for condition in rule.requires + rule.conditions
            for time in self.crossings(condition)
        ]
        return sql.least(self.dialect, *future) if future else literal(None)

    # context -------------------------------------------------------------------------
    def context(self, rule: definitions.Rule) -> ColumnElement[Any]:
        """The JSON context a member of `rule` carries (what to show or send)."""
        d, f = self.dialect, self.f
        if rule.context == "browsing":
            product = sql.json_object(
                d,
                "id",
                f.c.last_product_id,
                "name",
                f.c.last_product_name,
                "url",
                f.c.last_product_url,
                "category",
                f.c.last_product_category,
                "price",
                _money(f.c.last_product_price_cents),
                "viewed_at",
                f.c.last_product_viewed_at,
            )
            return sql.json_object(
                d,
                "last_product",
                product,
                "top_categories",
                sql.json_value(d, f.c.top_categories),
                "product_views",
                f.c.product_views,
            )
        if rule.context == "cart":
            return sql.json_object(
                d,
                "cart",
                self.cart_lines(),
                "cart_value",
                _money(f.c.cart_value_cents),
                "cart_items",
                f.c.cart_items,
                "last_cart_add_at",
                f.c.last_cart_add_at,
                "last_checkout_at",
                f.c.last_checkout_at,
            )
        if rule.context == "buyer":
            return sql.json_object(
                d,
                "order_count",
                f.c.order_count,
                "revenue",
                _money(f.c.revenue_cents),
                "first_order_at",
                f.c.first_order_at,
                "last_order_at",
                f.c.last_order_at,
            )
        if rule.context == "email":
            return sql.json_object(
                d,
                "email_opens",
                f.c.email_opens,
                "email_clicks",
                f.c.email_clicks,
                "first_email_at",
                f.c.first_email_at,
                "last_email_engaged_at",
                f.c.last_email_engaged_at,
            )
        return sql.json_object(
            d,
            "first_seen_at",
            f.c.first_seen_at,
            "last_seen_at",
            f.c.last_seen_at,
            "sessions",
            f.c.sessions,
        )

    def cart_lines(self) -> ColumnElement[Any]:
        """The products in the cart (added after the last order), oldest first, as a JSON array."""
        d, f = self.dialect, self.f
        lines = (
            select(
                cart.c.product_id,
                cart.c.name,
                cart.c.url,
                cart.c.category,
                cart.c.price_cents,
                cart.c.quantity,
                cart.c.at,
            )
            .where(
                cart.c.site_id == f.c.site_id,
                cart.c.profile_id == f.c.profile_id,
                cart.c.added.is_(True),
                or_(f.c.last_order_at.is_(None), cart.c.at > f.c.last_order_at),
            )
            .order_by(cart.c.at, cart.c.product_id)
            .limit(CART_LINES_SHOWN)
            .correlate(f)
            .subquery()
        )
        line = sql.json_object(
            d,
            "product_id",
            lines.c.product_id,
            "name",
            lines.c.name,
            "url",
            lines.c.url,
            "category",
            lines.c.category,
            "price",
            _money(lines.c.price_cents),
            "quantity",
            lines.c.quantity,
        )
        agg = sql.json_array_agg(d, line, lines.c.at, lines.c.product_id)
        return sql.json_value(d, select(agg).scalar_subquery())


def _money(cents):
    return cast(cents, Float) / 100
