// The persisted queue. Each tab owns one key, "cohortly.q.<tab id>" = {t: lease expiry, q: [messages]}, and only
// that tab sends its messages. A batch leaves the key while its request is in flight and goes back to the front
// if the request fails, so no message is ever both stored and in flight. A key whose lease has expired (its tab
// was closed, or released it when hidden while the collector was failing) is adopted by the next tab that
// flushes, which removes it.
import { endpoint, batchSize } from "./config.js";
import { enabled } from "./privacy.js";
import { PREFIX, storage, now } from "./store.js";
import { randomId } from "./message.js";

const QUEUE_PREFIX = PREFIX + "q.";
const ownKey = QUEUE_PREFIX + randomId();

const MAX_STORED = 500; // messages; the oldest are dropped
const MAX_BATCH = 20; // messages a request
// Every flush renews the lease for two minutes, long enough for a throttled background tab to flush again.
const LEASE_MS = 2 * 60 * 1000;
const RELEASED = 1; // a lease that expired long ago: the next tab adopts the queue at once
// keepalive lets a request outlive the page; the browser allows 64 KB of them at once, so only bodies under this
// many characters ask for it.
const MAX_KEEPALIVE_BODY = 20000;
const MAX_DOUBLINGS = 8; // backoff: at most 2 ** 8 s

let failures = 0; // failed requests since the last success, counted up to MAX_DOUBLINGS
let nextAttempt = 0; // no request before this time; Infinity while a request is in flight

const load = (key) => {
  try {
    return JSON.parse(storage[key]);
  } catch (e) {
    return { q: [] };
  }
};

// Stores the tab's queue with a fresh lease, or a released one.
const save = (queue, release) => {
  if (!enabled()) return;
  if (queue.length) {
    storage[ownKey] = JSON.stringify({ t: release ? RELEASED : now() + LEASE_MS, q: queue.slice(-MAX_STORED) });
  } else {
    delete storage[ownKey];
  }
};

// Seconds to wait after another failure: a random time up to 2, 4, 8 ... 256 s (full jitter).
const backoff = () => {
  if (failures < MAX_DOUBLINGS) failures++;
  return Math.random() * 2 ** failures;
};

// hidden: the page is being hidden or unloaded. If the collector has been answering, the next batch goes out
// (with keepalive); if it has been failing, everything stays stored and the lease is released, so that the next
// page load or another tab sends it.
export const flush = (hidden) => {
  if (!enabled()) return;

  // The tab's own queue, after the queues of other tabs whose lease has expired (older messages first).
  let queue = load(ownKey).q;
  for (const key in storage) {
    if (key != ownKey && key.startsWith(QUEUE_PREFIX)) {
      const other = load(key);
      const leased = other.t > now(); // false without a lease too
      if (!leased) {
        queue = other.q.concat(queue);
        delete storage[key];
      }
    }
  }

  // The next batch leaves the stored queue if it may go now: when hidden, only if the collector has not been
  // failing; otherwise once the backoff is over and no request is in flight.
  const mayGo = hidden ? !failures : now() >= nextAttempt;
  const batch = mayGo ? queue.splice(0, MAX_BATCH) : [];
  save(queue, hidden);
  if (!batch.length) return;
  const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });

  // After a success, flush again at once: it sends the rest, if any (and adopts expired queues of other tabs).
  const succeeded = () => {
    failures = 0;
    nextAttempt = 0;
    flush();
  };
  // The batch goes back to the front of the queue, for another try after Retry-After seconds, else after the
  // backoff.
  const failed = (retryAfter) => {
    nextAttempt = now() + 1000 * (retryAfter || backoff());
    save(batch.concat(load(ownKey).q));
  };

  nextAttempt = Infinity;
  fetch(endpoint("batch"), { method: "POST", body, keepalive: body.length < MAX_KEEPALIVE_BODY }).then(
    (response) => {
      // 429 and 5xx: try again. Any other answer is final: 2xx done (rejected messages are not retried), other
      // 4xx dropped.
      if (response.status == 429 || response.status >= 500) failed(Number(response.headers.get("Retry-After")));
      else succeeded();
    },
    () => failed() // network failure
  );
};

export const enqueue = (message) => {
  const queue = load(ownKey).q;
  queue.push(message);
  save(queue);
  if (queue.length >= batchSize) flush();
};
