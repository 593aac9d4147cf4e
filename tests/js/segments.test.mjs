import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { storage, requests, answers, reset, settled } from "./browser.mjs";

const { segments } = await import("../../js-snippet/src/segments.js");

beforeEach(reset);

// Calls segments() and returns every call of the callback, checking that none came during the call itself.
const ask = async () => {
  const calls = [];
  segments((names) => calls.push(names));
  assert.deepEqual(calls, [], "the callback runs later, never during the call");
  await settled();
  return calls;
};

test("a known visitor gets the names; the request carries the write key and the anonymousId", async () => {
  storage["cohortly.a"] = "1-2-3-4";
  answers.push({ status: 200, json: { segments: ["active", "browsers"] } });
  assert.deepEqual(await ask(), [["active", "browsers"]]);
  assert.deepEqual(
    requests.map((r) => [r.url, r.method]),
    [["https://collector.example/v1/segments/me?writeKey=wk&anonymousId=1-2-3-4", undefined]]
  );
});

test("no anonymousId yet: [] without a request", async () => {
  assert.deepEqual(await ask(), [[]]);
  assert.equal(requests.length, 0);
});

test("tracking off (opted out): [] without a request, even with an anonymousId", async () => {
  storage["cohortly.a"] = "1-2-3-4"; // e.g. kept by a page that wrote it back
  storage["cohortly.c"] = "0";
  assert.deepEqual(await ask(), [[]]);
  assert.equal(requests.length, 0);
});

const failures = {
  "an error answer (unknown write key)": { status: 401, json: { error: { code: "invalid_write_key" } } },
  "a 403 (origin not allowed)": { status: 403, json: { error: { code: "origin_not_allowed" } } },
  "a 502 that is not JSON": { status: 502 },
  "a network failure": "network",
};
for (const [name, answer] of Object.entries(failures)) {
  test(`${name}: [] once`, async () => {
    storage["cohortly.a"] = "1-2-3-4";
    answers.push(answer);
    assert.deepEqual(await ask(), [[]]);
    assert.equal(requests.length, 1);
  });
}

test("a callback that throws is called once, not again with []; its error is not swallowed", async () => {
  storage["cohortly.a"] = "1-2-3-4";
  answers.push({ status: 200, json: { segments: ["active"] } });
  const calls = [];
  // Through window.cohortly the promise is dropped and the error surfaces as the page's unhandled rejection.
  const error = await segments((names) => {
    calls.push(names);
    throw new Error("the page's bug");
  }).then(() => null, (e) => e.message);
  assert.deepEqual(calls, [["active"]]);
  assert.equal(error, "the page's bug");
});
