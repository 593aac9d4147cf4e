"""The grammar of site-defined segments: a JSON Schema (published in the OpenAPI document) and the checks a schema
cannot express. `check_definition` returns the problems of a definition as {JSON pointer: message}. Pure.

A rule is one of:
- `{"all": [RULE, ...]}`, `{"any": [RULE, ...]}`, `{"not": RULE}`;
- a behaviour: `{"event": "Product Viewed", "where": {"category": "Shoes"}, "within": "14d", "count": {"gte": 3}}`,
  or with `"sum"`, `"min"` or `"max"` of a numeric property instead of `"count"` (which defaults to `{"gte": 1}`);
- a fact: `{"fact": "order_count", "gte": 2}`, `{"fact": "last_order_at", "older_than": "60d"}`;
- a segment: `{"segment": "repeat_buyers"}` (a member of it now).
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from segmenter.rules.definitions import DAY, HOUR, parse_duration

KINDS = ("all", "any", "not", "event", "fact", "segment")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
MATCHES = (*COMPARISONS, "in", "prefix")
AGGREGATES = ("sum", "min", "max")
PAGE_VIEWED = "Page Viewed"
#: The properties a `Page Viewed` behaviour may filter on (what page calls carry).
PAGE_PROPERTIES = ("path", "url", "title", "referrer", "name")
#: Facts a rule may test, by kind. Numbers compare as numbers; times take `within` / `older_than`.
NUMBER_FACTS = (
    "event_count",
    "sessions",
    "page_views",
    "product_views",
    "cart_items",
    "cart_value_cents",
    "order_count",
    "revenue_cents",
    "email_opens",
    "email_clicks",
)
TIME_FACTS = (
    "first_seen_at",
    "last_seen_at",
    "last_product_viewed_at",
    "last_cart_add_at",
    "last_checkout_at",
    "first_order_at",
    "last_order_at",
    "first_email_at",
    "last_email_engaged_at",
)
TEXT_FACTS = ("last_product_category", "last_product_id", "email", "user_id")
FACT_OPERATORS = {
    **dict.fromkeys(NUMBER_FACTS, (*COMPARISONS, "in", "present")),
    **dict.fromkeys(TIME_FACTS, ("within", "older_than", "present")),
    **dict.fromkeys(TEXT_FACTS, ("eq", "ne", "in", "prefix", "present")),
}
NAME = r"^[a-z][a-z0-9_]{0,62}$"
#: Names a site-defined segment may not take (route words).
RESERVED = ("preview",)
MAX_NODES = 64
MAX_DEPTH = 8
#: Windows are counted in whole hours; the longest is ten years.
WINDOW_RESOLUTION = HOUR
LONGEST_WINDOW = 3660 * DAY
#: Numbers in rules stay within what both databases compare exactly.
NUMBER_BOUND = 1e15

_duration = {"type": "string", "pattern": r"^\s*\d{1,9}\s*(ms|s|m|h|d|w)\s*$"}
_number = {"type": "number", "minimum": -NUMBER_BOUND, "maximum": NUMBER_BOUND}
_value = {"oneOf": [{"type": "string", "maxLength": 500}, _number, {"type": "boolean"}]}
_comparison = {
    "type": "object",
    "properties": dict.fromkeys(COMPARISONS, _number),
    "additionalProperties": False,
    "minProperties": 1,
}
_aggregate = {
    "type": "object",
    "properties": {"property": {"type": "string", "minLength": 1, "maxLength": 200}, **_comparison["properties"]},
    "required": ["property"],
    "additionalProperties": False,
    "minProperties": 2,
}
_match_object = {
    "type": "object",
    "properties": {
        **dict.fromkeys(("eq", "ne"), _value),
        **dict.fromkeys(("gt", "gte", "lt", "lte"), _number),
        "in": {"type": "array", "items": _value, "minItems": 1, "maxItems": 100},
        "prefix": {"type": "string", "minLength": 1, "maxLength": 500},
    },
    "additionalProperties": False,
    "minProperties": 1,
}
_rule_ref = {"$ref": "#/$defs/rule"}
_list_of_rules = {"type": "array", "items": _rule_ref, "minItems": 1, "maxItems": 20}

#: The grammar as JSON Schema (draft 2020-12). The API publishes it; `check_definition` validates with it.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "rule": {
            "type": "object",
            "oneOf": [{"required": [kind]} for kind in KINDS],
            "allOf": [{"if": {"required": [kind]}, "then": {"$ref": f"#/$defs/{kind}"}} for kind in KINDS],
        },
        "all": {"properties": {"all": _list_of_rules}, "additionalProperties": False},
        "any": {"properties": {"any": _list_of_rules}, "additionalProperties": False},
        "not": {"properties": {"not": _rule_ref}, "additionalProperties": False},
        "event": {
            "properties": {
                "event": {"type": "string", "minLength": 1, "maxLength": 200},
                "where": {
                    "type": "object",
                    "maxProperties": 10,
                    "propertyNames": {"minLength": 1, "maxLength": 200},
                    "additionalProperties": {"oneOf": [_value, _match_object]},
                },
                "within": _duration,
                "count": _comparison,
                **dict.fromkeys(AGGREGATES, _aggregate),
            },
            "additionalProperties": False,
        },
        "fact": {
            "properties": {
                "fact": {"enum": sorted(FACT_OPERATORS)},
                **dict.fromkeys(("eq", "ne"), _value),
                **dict.fromkeys(("gt", "gte", "lt", "lte"), _number),
                "in": {"type": "array", "items": _value, "minItems": 1, "maxItems": 100},
                "prefix": {"type": "string", "minLength": 1, "maxLength": 500},
                "within": _duration,
                "older_than": _duration,
                "present": {"type": "boolean"},
            },
            "additionalProperties": False,
            "minProperties": 2,
        },
        "segment": {
            "properties": {"segment": {"type": "string", "pattern": NAME}},
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": NAME},
        "description": {"type": "string", "maxLength": 500},
        "rule": _rule_ref,
        "requires": _rule_ref,
    },
    "required": ["name", "rule"],
    "additionalProperties": False,
}
_validator = Draft202012Validator(SCHEMA)


def pointer(path: Iterable[Any]) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def check_definition(
    definition: Any,
    segments: Mapping[str, Any] | None = None,
    built_in: Iterable[str] = (),
    replacing: str | None = None,
) -> dict[str, str]:
    """The problems of a segment definition, {JSON pointer: message}; empty when it may be saved.

    `segments` maps the site's other defined segments to their rules (to follow `segment` references and refuse
    cycles), `built_in` names the built-in segments; `replacing` is the name of the segment being edited.
    """
    if not isinstance(definition, dict):
        return {"": "A segment definition is a JSON object with `name` and `rule`."}
    too_big = _size_problem(definition)
    if too_big:
        return too_big
    errors = list(_flatten(_validator.iter_errors(definition)))
    if errors:
        error = _deepest(errors)
        return {pointer(error.absolute_path): _message(error)}
    segments = segments or {}
    problems: dict[str, str] = {}
    name = definition["name"]
    built_in = set(built_in)
    if name in RESERVED or (name in built_in and replacing is None):
        problems["/name"] = f"{name!r} is taken: choose another name."
    for key in ("rule", "requires"):
        if key in definition:
            problems.update(_check_rule(definition[key], (key,), set(segments) | built_in | {name}))
    if not problems:
        cycle = _cycle(name, definition, segments)
        if cycle:
            problems["/rule"] = "Segments may not refer to themselves: " + " → ".join(cycle) + "."
    return problems


def references(rule: Any) -> set[str]:
    """The segments a rule refers to."""
    found = set()
    stack = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("segment"), str):
                found.add(node["segment"])
            stack.extend(node.get("all", []) + node.get("any", []) + ([node["not"]] if "not" in node else []))
    return found


def _size_problem(definition: dict) -> dict[str, str]:
    """Bounds checked before the schema walks the document: nesting depth and number of nodes."""
    stack = [(definition, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > 4 * MAX_DEPTH + 4:
            return {"/rule": f"The rule nests deeper than {MAX_DEPTH} levels."}
        if nodes > 40 * MAX_NODES:
            return {"/rule": f"The rule has more than {MAX_NODES} conditions."}
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return {}


def _flatten(errors: Iterable[Any]) -> Iterable[Any]:
    """The errors, and for a failed `oneOf` over an object the errors found deeper inside it (e.g. an empty `in`
    of a property filter), so that the message points at the field that is wrong."""
    for error in errors:
        yield error
        if error.validator == "oneOf" and isinstance(error.instance, dict):
            depth = len(error.absolute_path)
            yield from (inner for inner in _flatten(error.context) if len(inner.absolute_path) > depth)


def _deepest(errors: list) -> Any:
    """The error that says most about where the rule goes wrong: the deepest one, preferring a precise check
    over the "exactly one kind" one at the same place."""
    deepest = max(len(error.absolute_path) for error in errors)
    at_deepest = [error for error in errors if len(error.absolute_path) == deepest]
    for error in at_deepest:
        if (
            error.validator == "oneOf"
            and isinstance(error.instance, dict)
            and len(set(error.instance) & set(KINDS)) > 1
        ):
            return error
    precise = [error for error in at_deepest if error.validator not in ("oneOf", "allOf", "if")]
    return (precise or at_deepest)[0]


def _message(error: Any) -> str:
    if error.validator == "oneOf" and error.schema is SCHEMA["$defs"]["rule"]:
        return "A rule has exactly one of: " + ", ".join(KINDS) + "."
    if error.validator == "oneOf" and len(error.absolute_path) >= 2 and error.absolute_path[-2] == "where":
        return "A property filter is a value, or an object of " + ", ".join(MATCHES) + "."
    if error.validator == "minProperties" and isinstance(error.instance, dict):
        fact = error.instance.get("fact")
        in_where = len(error.absolute_path) >= 2 and error.absolute_path[-2] == "where"
        allowed = FACT_OPERATORS.get(fact) or (MATCHES if in_where else COMPARISONS)
        return f"{fact or 'This condition'} needs one of: {', '.join(allowed)}."
    if error.validator == "additionalProperties":
        return "Unknown field: " + error.message.split("(", 1)[-1].rstrip(")").replace(" was unexpected", "") + "."
    if error.validator == "pattern" and error.schema is _duration:
        return f"Not a duration: {error.instance!r} (use e.g. 30m, 2h, 14d, 1w)."
    if error.validator == "pattern":
        return "A segment name is 1 to 63 lower-case letters, digits and underscores, starting with a letter."
    if error.validator == "enum":
        return f"Unknown fact {error.instance!r}: see the fact table in docs/segments.md."
    return error.message


def _check_rule(rule: dict, path: tuple, known: set[str]) -> dict[str, str]:
    """The checks the schema cannot make, with the pointer of each problem."""
    problems: dict[str, str] = {}
    count = 0
    stack = [(rule, path, 1)]
    while stack:
        node, here, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            problems[pointer(here)] = f"The rule nests deeper than {MAX_DEPTH} levels."
            continue
        for kind in ("all", "any"):
            stack.extend((child, (*here, kind, index), depth + 1) for index, child in enumerate(node.get(kind, [])))
        if "not" in node:
            stack.append((node["not"], (*here, "not"), depth + 1))
        if "event" in node:
            problems.update(_check_behaviour(node, here))
        if "fact" in node:
            problems.update(_check_fact(node, here))
        if "segment" in node and node["segment"] not in known:
            problems[pointer((*here, "segment"))] = f"No segment named {node['segment']!r}."
    if count > MAX_NODES:
        problems[pointer(path)] = f"The rule has more than {MAX_NODES} conditions."
    return problems


def _check_behaviour(node: dict, here: tuple) -> dict[str, str]:
    problems = {}
    measures = [key for key in ("count", *AGGREGATES) if key in node]
    if len(measures) > 1:
        problems[pointer((*here, measures[1]))] = "A behaviour has one of count, sum, min or max."
    if "within" in node:
        problems.update(_check_window(node["within"], (*here, "within")))
    if node["event"] == PAGE_VIEWED:
        for key in node.get("where", {}):
            if key not in PAGE_PROPERTIES:
                problems[pointer((*here, "where", key))] = (
                    f"Page views carry {', '.join(PAGE_PROPERTIES)}; {key!r} is not one of them."
                )
    for key, match in node.get("where", {}).items():
        if isinstance(match, dict) and "prefix" in match and len(match) > 1:
            problems[pointer((*here, "where", key))] = "`prefix` stands alone in a property filter."
    return problems


def _check_fact(node: dict, here: tuple) -> dict[str, str]:
    allowed = FACT_OPERATORS[node["fact"]]
    problems = {}
    for key in node:
        if key != "fact" and key not in allowed:
            problems[pointer((*here, key))] = f"{node['fact']} takes {', '.join(allowed)}; not {key}."
    for key in ("within", "older_than"):
        if key in node:
            problems.update(_check_window(node[key], (*here, key)))
    return problems


def _check_window(text: str, here: tuple) -> dict[str, str]:
    ms = parse_duration(text)
    if not 0 < ms <= LONGEST_WINDOW:
        return {pointer(here): "A window is longer than 0 and at most 3660d."}
    return {}


def _cycle(name: str, definition: dict, segments: Mapping[str, Any]) -> list[str]:
    """A chain of references from `name` back to itself, if the definition would make one."""
    graph = {other: references(rule) for other, rule in segments.items() if other != name}
    graph[name] = references(definition["rule"]) | references(definition.get("requires") or {})
    path: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> bool:
        if node == name and path:
            return True
        if node in seen:
            return False
        seen.add(node)
        path.append(node)
        if any(visit(target) for target in sorted(graph.get(node, ()))):
            return True
        path.pop()
        return False

    return [*path, name] if visit(name) else []


def is_name(text: Any) -> bool:
    """Whether `text` may name a site-defined segment (the pattern alone; see check_definition)."""
    return isinstance(text, str) and re.fullmatch(NAME, text) is not None


def openapi_components() -> dict[str, dict[str, Any]]:
    """The grammar as OpenAPI 3.0 component schemas: `SegmentDefinition`, `SegmentRule` and one per kind of
    rule. The same parts as SCHEMA, with each kind told apart by its required key (`oneOf`) instead of `if`."""

    def published(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    "#/components/schemas/" + _component(item[len("#/$defs/") :]) if key == "$ref" else published(item)
                )
                for key, item in value.items()
                if key not in ("$schema", "$defs", "propertyNames")
            }
        if isinstance(value, list):
            return [published(item) for item in value]
        return value

    components = {
        _component(kind): {"type": "object", "required": [kind], **published(SCHEMA["$defs"][kind])} for kind in KINDS
    }
    components["SegmentRule"] = {"oneOf": [{"$ref": f"#/components/schemas/{_component(kind)}"} for kind in KINDS]}
    components["SegmentDefinition"] = published({key: value for key, value in SCHEMA.items() if key != "$defs"})
    return components


def _component(name: str) -> str:
    return "SegmentRule" if name == "rule" else "SegmentRule" + name.capitalize()
