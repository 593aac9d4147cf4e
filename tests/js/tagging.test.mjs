import { test } from "node:test";
import assert from "node:assert/strict";
import { tagProperties } from "../../js-snippet/src/tagging.js";

const element = (attributes) => ({ attributes: Object.entries(attributes).map(([name, value]) => ({ name, value })) });

test("data-cohortly-prop-* values: plain decimals become numbers, identifiers and the rest stay strings", () => {
  const cases = [
    ["price", "19.99", 19.99],
    ["quantity", "2", 2],
    ["delta", "-3.5", -3.5],
    ["zero", "0", 0],
    ["leading_zero", "007", "007"],
    ["exponent", "1e3", "1e3"],
    ["trailing_dot", "12.", "12."],
    ["spaces", " 12", " 12"],
    ["empty", "", ""],
    ["hex", "0x1F", "0x1F"],
    ["product_id", "12345", "12345"],
    ["id", "9", "9"],
    ["sku", "12345", "12345"],
    ["name", "Blue Shirt", "Blue Shirt"],
  ];
  for (const [name, value, expected] of cases) {
    assert.deepEqual(tagProperties(element({ ["data-cohortly-prop-" + name]: value })), { [name]: expected }, name);
  }
});

test("only data-cohortly-prop-* attributes become properties", () => {
  const el = element({ "data-cohortly-event": "Product Added", class: "btn", "data-cohortly-prop-sku": "A-1" });
  assert.deepEqual(tagProperties(el), { sku: "A-1" });
});
