"""docs/segments.md keeps true about site-defined segments: every example passes the grammar, the fact table
names exactly the facts a rule may test, and the limits it states are the code's."""

import json
import pathlib
import re

from segmenter.rules import definitions, grammar

DOCS = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "segments.md").read_text(encoding="utf-8")
SECTION = DOCS.split("## Site-defined segments", 1)[1].split("\n## ", 1)[0]
BUILT_IN = [rule.name for rule in definitions.BUILT_IN]


def test_every_example_is_a_valid_definition():
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", SECTION, flags=re.DOTALL)]
    assert len(examples) >= 6
    for example in examples:
        assert grammar.check_definition(example, built_in=BUILT_IN) == {}, example["name"]
    kinds = {key for example in examples for key in json.dumps(example["rule"]).split('"') if key in grammar.KINDS}
    assert kinds >= {"all", "event", "fact", "segment"}


def test_the_fact_table_names_the_facts_a_rule_may_test():
    rows = re.findall(r"^\| (`.*`) \| (number|time|text) \|$", SECTION, flags=re.MULTILINE)
    table = {kind: set(re.findall(r"`(\w+)`", names)) for names, kind in rows}
    assert table == {
        "number": set(grammar.NUMBER_FACTS),
        "time": set(grammar.TIME_FACTS),
        "text": set(grammar.TEXT_FACTS),
    }


def test_the_stated_limits_are_the_code_s():
    text = " ".join(SECTION.split())
    assert f"up to 20 rules each, {grammar.MAX_DEPTH} levels deep, {grammar.MAX_NODES} conditions" in text
    assert "at most 3660d" in text and grammar.LONGEST_WINDOW == 3660 * definitions.DAY
    assert "per profile and UTC hour" in text and grammar.WINDOW_RESOLUTION == definitions.HOUR
