// The persisted queue. Each tab owns one key, "cohortly.q.<tab id>" = {t: lease expiry, q: [messages]}, and only
// that tab sends its messages. A batch leaves the key while its request is in flight and goes back to the front
// if the request fails, so no message is ever both stored and in flight. A key whose lease has expired (its tab
// was closed, or released it when hidden while the collector was failing) is adopted by the next tab that
// flushes, which removes it.
import { endpoint, batchSize } from "./config.js";
import { enabled } from "./privacy.js";
import { PREFIX, storage, now } from "./store.js";
import { randomId } from "./message.js";

const own = PREFIX + "q." + randomId();
let failures = 0;
let nextAttempt = 0; // Infinity while a request is in flight

const load = (key) => {
  try {
    return JSON.parse(storage[key]);
  } catch (e) {
    return { q: [] };
  }
};

// Keeps at most 500 messages, dropping the oldest. Every flush renews the lease for two minutes, long enough
// for a throttled background tab to flush again; lease 1 releases the queue at once.
const save = (queue, lease) =>
  enabled() &&
  (queue[0]
    ? (storage[own] = JSON.stringify({ t: lease || now() + 12e4, q: queue.slice(-500) }))
    : delete storage[own]);

// hidden: the page is being hidden or unloaded. If the collector has been answering, the next batch goes out
// (with keepalive); if it has been failing, everything stays stored and the lease is released, so that the next
// page load or another tab sends it.
export const flush = (hidden) => {
  if (!enabled()) return;
  let queue = load(own).q;
  for (const key in storage)
    if (key != own && !key.indexOf(PREFIX + "q.")) {
      const other = load(key);
      if (!(other.t > now())) {
        queue = other.q.concat(queue); // older first
        delete storage[key];
      }
    }
  if (!queue[0] || (hidden ? failures : now() < nextAttempt)) return save(queue, hidden);

  const batch = queue.splice(0, 20);
  save(queue, hidden);
  const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });
  const settle = (retry, retryAfter) => {
    // Retry after Retry-After seconds, else after a random time up to 2, 4, 8 ... 256 s. After a success, flush
    // again at once: it sends the rest, if any (and adopts expired queues of other tabs).
    nextAttempt = retry ? now() + 1e3 * (retryAfter || Math.random() * 2 ** (failures += failures < 8)) : (failures = 0);
    if (retry) save(batch.concat(load(own).q));
    else flush();
  };
  nextAttempt = 1 / 0;
  // keepalive lets the request outlive the page; the browser allows 64 KB of them at once.
  fetch(endpoint("batch"), { method: "POST", body, keepalive: body.length < 2e4 }).then(
    (r) => settle(r.status == 429 || r.status > 499, +r.headers.get("Retry-After")),
    () => settle(1)
  );
};

export const enqueue = (message) => {
  const queue = load(own).q;
  const size = queue.push(message);
  save(queue);
  if (size >= batchSize) flush();
};
