"""The built-in segments and their settings, as data. Pure: no I/O, no framework imports.

A rule is a name, a description and two lists of conditions over a profile's facts:
`requires` (the minimum data: a profile failing it is left out, not judged) and
`conditions`. Each condition is an operator name from `OPERATORS` applied to a fact
and an argument (a literal, a setting name, or further facts/conditions).
`segmenter.rules.meaning` evaluates the rules in Python; `segmenter.rules.sql` compiles the
very same data to SQL.

Times are epoch milliseconds; durations are milliseconds.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

#: Two events of a profile more than this far apart start a new session. Fixed (not a
#: site setting) because stored facts depend on it.
SESSION_GAP = 30 * MINUTE
#: How many of a profile's latest product views are kept (for "N views in the window",
#: the last product viewed and the top categories).
RECENT_VIEWS_KEPT = 20
#: How many categories `top_categories` lists.
TOP_CATEGORIES = 3
#: The Segment Ecommerce and Email spec events the facts are built from.
PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"
EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Link Clicked"
#: Email events come from an email tool, not a visit: they do not make a profile "seen".
EMAIL_EVENTS = (EMAIL_DELIVERED, EMAIL_OPENED, EMAIL_CLICKED)
PRODUCT_EVENTS = (PRODUCT_VIEWED, PRODUCT_ADDED, PRODUCT_REMOVED)
#: Bump when a rule changes meaning, so the next rollup re-evaluates every profile.
RULES_VERSION = 1

#: The operators a condition may use, with what they mean (the SQL twin is in queries.py).
OPERATORS = {
    "present": "the fact has a value",
    "at_least": "the fact is at least the argument",
    "equals": "the fact equals the argument",
    "within": "the time is less than the argument (a duration) before now",
    "older_than": "the time is at least the argument (a duration) before now",
    "not_within": "the time is absent, or at least the argument (a duration) before now",
    "after": "the time is later than each of the other times (absent ones count as earlier)",
    "any": "at least one of the argument's conditions holds",
}

#: Human names of facts, used in reasons.
FACT_LABELS = {
    "first_seen_at": "first seen",
    "last_seen_at": "last seen",
    "sessions": "sessions",
    "order_count": "orders",
    "cart_items": "cart items",
    "last_cart_add_at": "cart add",
    "last_checkout_at": "checkout start",
    "last_order_at": "order",
    "first_email_at": "first email",
    "last_email_engaged_at": "email open or click",
    "nth_product_view_at": "product views",
}

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": SECOND, "ms": 1}


def parse_duration(text: object) -> int:
    """Milliseconds of a duration like `30m`, `2h`, `7d`, `1w`, `90s`.

    >>> parse_duration("2h")
    7200000
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"Not a duration: {text!r} (use e.g. 30m, 2h, 7d).")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(ms: int) -> str:
    """The shortest exact spelling of a duration in milliseconds.

    >>> format_duration(7200000)
    '2h'
    """
    for unit, size in _UNITS.items():
        if unit != "w" and ms % size == 0 and (ms or unit == "ms"):
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class Setting:
    """A per-site setting: name, default, kind ("duration" in ms, "count" or "flag"), bounds, help."""

    name: str
    default: int
    kind: str
    minimum: int
    maximum: int
    help: str


SETTINGS = (
    Setting("browse_min_views", 2, "count", 1, RECENT_VIEWS_KEPT, "`browsers`: product views needed in the window"),
    Setting("browse_window", 7 * DAY, "duration", MINUTE, 365 * DAY, "`browsers`: how recent those views must be"),
    Setting(
        "cart_abandon_after", HOUR, "duration", SECOND, 90 * DAY, "`cart_abandoners`: wait after the last cart add"
    ),
    Setting(
        "cart_abandon_within",
        7 * DAY,
        "duration",
        MINUTE,
        365 * DAY,
        "`cart_abandoners`: leave once the last cart add is this old",
    ),
    Setting(
        "checkout_abandon_after",
        HOUR,
        "duration",
        SECOND,
        90 * DAY,
        "`checkout_abandoners`: wait after the last checkout start",
    ),
    Setting(
        "checkout_abandon_within",
        7 * DAY,
        "duration",
        MINUTE,
        365 * DAY,
        "`checkout_abandoners`: leave once the checkout start is this old",
    ),
    Setting("active_window", 7 * DAY, "duration", MINUTE, 365 * DAY, "`active`: seen within this long"),
    Setting("dormant_after", 30 * DAY, "duration", HOUR, 3650 * DAY, "`dormant`: not seen for this long"),
    Setting(
        "dormant_min_sessions", 2, "count", 1, 1000, "`dormant`: sessions that make a profile one that was active..."
    ),
    Setting("dormant_min_orders", 1, "count", 1, 1000, "`dormant`: ...or orders that do"),
    Setting("repeat_buyer_orders", 2, "count", 2, 1000, "`repeat_buyers`: orders needed (`new_buyers` have exactly 1)"),
    Setting(
        "email_window",
        30 * DAY,
        "duration",
        DAY,
        365 * DAY,
        "`email_engaged` / `email_unengaged`: the engagement window",
    ),
    Setting(
        "min_segment_size", 10, "count", 1, 1_000_000, "Segments with fewer members are flagged as too small to act on"
    ),
    # Privacy (see PRIVACY.md): read by the collector, the exports, the webhooks and `cohortly purge`.
    Setting("honor_dnt", True, "flag", 0, 1, "Drop events from browsers that send `DNT: 1` or `Sec-GPC: 1`"),
    Setting("store_ip", True, "flag", 0, 1, "Keep the truncated IP (IPv4 /24, IPv6 /48); off: keep no IP at all"),
    Setting("retention_days", 0, "count", 0, 36_500, "Delete events older than this many days (0: keep them)"),
    Setting(
        "require_consent",
        False,
        "flag",
        0,
        1,
        "Exports, member lists and webhooks leave out profiles without the trait `marketing_consent: true`",
    ),
    Setting("min_export_size", 1, "count", 1, 1_000_000, "Exports of segments with fewer members are refused (k)"),
    Setting(
        "identity_verification",
        False,
        "flag",
        0,
        1,
        "A userId links and changes a profile only with its `userHash` (`cohortly sites identity-secret`)",
    ),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def default_settings() -> dict[str, int]:
    """Every setting at its default, as {name: value} (durations in ms)."""
    return {setting.name: setting.default for setting in SETTINGS}


@dataclass(frozen=True)
class Condition:
    """`op` (a key of OPERATORS) applied to the fact `field` with `arg`.

    `arg` is an int, a setting name, a tuple of fact names (`after`) or a tuple of
    conditions (`any`, whose `field` is None).
    """

    op: str
    field: str | None
    arg: object = None


@dataclass(frozen=True)
class Rule:
    """A segment definition. `description` may name settings in braces."""

    name: str
    description: str
    requires: tuple[Condition, ...]
    conditions: tuple[Condition, ...]
    context: str = "activity"


BUILT_IN = (
    Rule(
        "browsers",
        "viewed {browse_min_views}+ products in the last {browse_window} with no cart add or order since",
        requires=(Condition("present", "nth_product_view_at"),),
        conditions=(
            Condition("within", "nth_product_view_at", "browse_window"),
            Condition("after", "nth_product_view_at", ("last_cart_add_at", "last_order_at")),
        ),
        context="browsing",
    ),
    Rule(
        "cart_abandoners",
        "added to the cart {cart_abandon_after} to {cart_abandon_within} ago, no checkout or order since",
        requires=(Condition("present", "last_cart_add_at"),),
        conditions=(
            Condition("at_least", "cart_items", 1),
            Condition("after", "last_cart_add_at", ("last_checkout_at", "last_order_at")),
            Condition("older_than", "last_cart_add_at", "cart_abandon_after"),
            Condition("within", "last_cart_add_at", "cart_abandon_within"),
        ),
        context="cart",
    ),
    Rule(
        "checkout_abandoners",
        "started a checkout {checkout_abandon_after} to {checkout_abandon_within} ago, no order since",
        requires=(Condition("present", "last_checkout_at"),),
        conditions=(
            Condition("after", "last_checkout_at", ("last_order_at",)),
            Condition("older_than", "last_checkout_at", "checkout_abandon_after"),
            Condition("within", "last_checkout_at", "checkout_abandon_within"),
        ),
        context="cart",
    ),
    Rule(
        "active",
        "seen in the last {active_window}",
        requires=(Condition("present", "last_seen_at"),),
        conditions=(Condition("within", "last_seen_at", "active_window"),),
    ),
    Rule(
        "dormant",
        "was active ({dormant_min_sessions}+ sessions or {dormant_min_orders}+ orders), not seen for {dormant_after}",
        requires=(
            Condition(
                "any",
                None,
                (
                    Condition("at_least", "sessions", "dormant_min_sessions"),
                    Condition("at_least", "order_count", "dormant_min_orders"),
                ),
            ),
        ),
        conditions=(Condition("older_than", "last_seen_at", "dormant_after"),),
    ),
    Rule(
        "new_buyers",
        "completed exactly 1 order",
        requires=(Condition("at_least", "order_count", 1),),
        conditions=(Condition("equals", "order_count", 1),),
        context="buyer",
    ),
    Rule(
        "repeat_buyers",
        "completed {repeat_buyer_orders}+ orders",
        requires=(Condition("at_least", "order_count", 1),),
        conditions=(Condition("at_least", "order_count", "repeat_buyer_orders"),),
        context="buyer",
    ),
    Rule(
        "email_engaged",
        "opened or clicked an email in the last {email_window}",
        requires=(Condition("present", "first_email_at"),),
        conditions=(Condition("within", "last_email_engaged_at", "email_window"),),
        context="email",
    ),
    Rule(
        "email_unengaged",
        "has received emails for {email_window} or more, none opened or clicked in the last {email_window}",
        requires=(Condition("older_than", "first_email_at", "email_window"),),
        conditions=(Condition("not_within", "last_email_engaged_at", "email_window"),),
        context="email",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in BUILT_IN}


def resolve(arg: object, settings: Mapping[str, int]) -> Any:
    """The value of a condition argument: a setting's value when it names one."""
    if isinstance(arg, str) and arg in SETTINGS_BY_NAME:
        return settings[arg]
    return arg


def _show(arg, settings):
    value = resolve(arg, settings)
    if isinstance(arg, str) and SETTINGS_BY_NAME[arg].kind == "duration":
        return format_duration(value)
    return str(value)


def describe(rule: Rule, settings: Mapping[str, int]) -> str:
    """The rule's description with the site's settings filled in."""
    shown = {
        name: format_duration(value) if SETTINGS_BY_NAME[name].kind == "duration" else str(value)
        for name, value in settings.items()
        if name in SETTINGS_BY_NAME
    }
    return rule.description.format(**shown)


def failure_reason(condition: Condition, settings: Mapping[str, int], missing: bool = False) -> str:
    """Why a profile fails `condition`, in words; `missing` when its fact has no value."""
    label = FACT_LABELS.get(condition.field, condition.field)
    op, arg = condition.op, condition.arg
    if op == "present" or (missing and op != "any"):
        return f"no {label}"
    if op == "at_least":
        return f"{label} below {_show(arg, settings)}"
    if op == "equals":
        return f"{label} not {_show(arg, settings)}"
    if op == "within":
        return f"{label} {_show(arg, settings)} or more ago"
    if op == "older_than":
        return f"{label} less than {_show(arg, settings)} ago"
    if op == "not_within":
        return f"{label} less than {_show(arg, settings)} ago"
    if op == "after":
        others = " or ".join(FACT_LABELS.get(name, name) for name in arg)
        return f"{others} since {label}"
    if op == "any":
        return "none of: " + "; ".join(failure_reason(inner, settings) for inner in arg)
    raise ValueError(f"Unknown operator {op!r}")


def settings_used(rules: Iterable[Rule]) -> list[str]:
    """The names of the settings that can change a verdict of `rules`."""
    used = {"browse_min_views"}  # read by the fact `nth_product_view_at`

    def visit(condition):
        if condition.op == "any":
            for inner in condition.arg:
                visit(inner)
        elif isinstance(condition.arg, str) and condition.arg in SETTINGS_BY_NAME:
            used.add(condition.arg)

    for rule in rules:
        for condition in rule.requires + rule.conditions:
            visit(condition)
    return sorted(used)


def check_rules(rules: Iterable[Rule]) -> None:
    """Raise ValueError unless every condition uses a known operator, fact and setting."""
    for rule in rules:
        for condition in rule.requires + rule.conditions:
            _check_condition(rule.name, condition)


def _check_condition(rule_name, condition):
    if condition.op not in OPERATORS:
        raise ValueError(f"{rule_name}: unknown operator {condition.op!r}")
    if condition.op == "any":
        for inner in condition.arg:
            _check_condition(rule_name, inner)
        return
    if condition.field not in FACT_LABELS:
        raise ValueError(f"{rule_name}: unknown fact {condition.field!r}")
    if condition.op == "after":
        unknown = [name for name in condition.arg if name not in FACT_LABELS]
        if unknown:
            raise ValueError(f"{rule_name}: unknown facts {unknown}")
    elif isinstance(condition.arg, str) and condition.arg not in SETTINGS_BY_NAME:
        raise ValueError(f"{rule_name}: unknown setting {condition.arg!r}")


check_rules(BUILT_IN)
