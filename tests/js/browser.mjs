// Just enough of a browser for the tracker's modules to run under node --test: a fake clock, a plain object as
// localStorage (the tracker only reads and writes storage[key]), and a scripted fetch.
export const clock = { now: 1_800_000_000_000 };
Date.now = () => clock.now;

export const storage = {};
export const requests = []; // {url, body, keepalive, batch}
export const answers = []; // what the next requests get: {status, headers, json} or "network"

Object.assign(globalThis, {
  VERSION: "test",
  window: globalThis,
  localStorage: storage,
  document: {
    currentScript: { dataset: { key: "wk", batch: "100", interval: "1000" }, src: "https://collector.example/c.js" },
    title: "Shop",
    referrer: "",
  },
  location: { href: "https://shop.example/", pathname: "/", search: "" },
  fetch: (url, options = {}) => {
    requests.push({ url, ...options, batch: options.body && JSON.parse(options.body).batch });
    const answer = answers.shift() || { status: 200 };
    if (answer == "network") return Promise.reject(new TypeError("Failed to fetch"));
    const headers = answer.headers || {};
    return Promise.resolve({
      status: answer.status,
      headers: { get: (name) => headers[name] ?? null },
      // A body that is not JSON (e.g. a proxy's HTML error page) when the answer gives none.
      json: () => ("json" in answer ? Promise.resolve(answer.json) : Promise.reject(new SyntaxError("not JSON"))),
    });
  },
});
Object.defineProperty(globalThis, "navigator", { value: { language: "en-GB" }, configurable: true });

let tabs = 0;
// A fresh queue module: a new tab, with its own key and retry state, on the same storage.
export const newTab = () => import(`../../js-snippet/src/queue.js?tab=${++tabs}`);
export const { build } = await import("../../js-snippet/src/message.js");

export const reset = () => {
  for (const key in storage) delete storage[key];
  requests.length = answers.length = 0;
};
export const settled = () => new Promise((resolve) => setImmediate(resolve));
export const queues = () =>
  Object.keys(storage)
    .filter((k) => k.startsWith("cohortly.q."))
    .map((k) => JSON.parse(storage[k]));
export const track = (tab, n) => {
  for (let i = 0; i < n; i++) tab.enqueue(build("track", { event: "E", properties: { i } }));
};
