import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { clock, storage, requests, answers, newTab, reset, settled, queues, track } from "./browser.mjs";

beforeEach(reset);

test("a flush sends the first 20 messages; after a success the rest follow at once", async () => {
  const tab = await newTab();
  track(tab, 25);
  tab.flush();
  assert.equal(requests[0].batch.length, 20);
  assert.equal(queues()[0].q.length, 5); // the batch in flight is not stored
  await settled();
  assert.equal(requests[1].batch.length, 5);
  await settled();
  assert.deepEqual(queues(), []);
  assert.equal(new Set(requests.flatMap((r) => r.batch.map((m) => m.messageId))).size, 25);
});

for (const status of [429, 503]) {
  test(`${status} with Retry-After: the same batch again, not before the delay`, async () => {
    const tab = await newTab();
    track(tab, 3);
    answers.push({ status, headers: { "Retry-After": "30" } });
    tab.flush();
    await settled();
    assert.deepEqual(queues()[0].q, requests[0].batch); // back in storage, in order
    clock.now += 29_000;
    tab.flush();
    assert.equal(requests.length, 1);
    clock.now += 1_000;
    tab.flush();
    assert.deepEqual(requests[1].batch, requests[0].batch);
  });
}

test("network failures and 5xx back off exponentially with jitter, at most 256 s", async () => {
  const tab = await newTab();
  track(tab, 1);
  const random = Math.random;
  Math.random = () => 0.999;
  const delays = [];
  try {
    for (let i = 0; i < 10; i++) {
      answers.push(i % 2 ? { status: 500 } : "network");
      const sent = requests.length;
      const start = clock.now;
      while (requests.length == sent) clock.now += 250, tab.flush();
      delays.push(clock.now - start);
      await settled();
    }
  } finally {
    Math.random = random;
  }
  // The first attempt goes at once; then 2, 4, 8 ... s (times the jitter, 0.999 here), capped at 2^8 s; each
  // seen at the first 250 ms step after it.
  const expected = [1, 2, 3, 4, 5, 6, 7, 8, 8].map((n) => Math.ceil((2 ** n * 999) / 250) * 250);
  assert.deepEqual(delays, [250, ...expected]);
});

for (const status of [400, 401, 403, 413]) {
  test(`${status} drops the batch`, async () => {
    const tab = await newTab();
    track(tab, 2);
    answers.push({ status });
    tab.flush();
    await settled();
    clock.now += 600_000;
    tab.flush();
    assert.equal(requests.length, 1);
    assert.deepEqual(queues(), []);
  });
}

test("a 200 with rejected messages drops them with the rest: nothing is retried", async () => {
  const tab = await newTab();
  track(tab, 2);
  answers.push({ status: 200 }); // e.g. {"accepted": 1, "rejected": [{"index": 1, ...}]}
  tab.flush();
  await settled();
  tab.flush();
  assert.equal(requests.length, 1);
  assert.deepEqual(queues(), []);
});

test("hidden while the collector fails: nothing sent, the queue kept and its lease released", async () => {
  const tab = await newTab();
  track(tab, 2);
  answers.push("network");
  tab.flush();
  await settled();
  track(tab, 1);
  tab.flush(1);
  assert.equal(requests.length, 1);
  const [queue] = queues();
  assert.equal(queue.q.length, 3);
  assert.equal(queue.t, 1);
});

test("hidden while the collector answers: the next batch goes out with keepalive, the rest is released", async () => {
  const tab = await newTab();
  track(tab, 22);
  tab.flush(1);
  assert.equal(requests[0].keepalive, true);
  assert.equal(requests[0].batch.length, 20);
  const [queue] = queues();
  assert.equal(queue.q.length, 2);
  assert.equal(queue.t, 1);
});

test("another tab's queue is adopted once its lease has expired, never before", async () => {
  const other = await newTab();
  track(other, 2); // stored with a lease of two minutes
  const tab = await newTab();
  track(tab, 1);
  answers.push({ status: 200 });
  tab.flush();
  assert.equal(requests[0].batch.length, 1);
  await settled();
  clock.now += 120_001; // the other tab has not flushed since: closed or frozen
  track(tab, 1);
  tab.flush();
  assert.deepEqual(requests[1].batch.map((m) => m.properties.i), [0, 1, 0]); // the older ones first
  assert.equal(Object.keys(storage).filter((k) => k.startsWith("cohortly.q.")).length, 0);
});

test("a tab renews its lease on every flush, so a live tab keeps its queue", async () => {
  const other = await newTab();
  answers.push({ status: 503, headers: { "Retry-After": "600" } });
  track(other, 1);
  other.flush();
  await settled();
  const tab = await newTab();
  for (let i = 0; i < 5; i++) {
    clock.now += 60_000;
    other.flush(); // in backoff: sends nothing, renews the lease
    tab.flush();
  }
  assert.equal(requests.length, 1);
  assert.equal(queues()[0].q.length, 1);
});
