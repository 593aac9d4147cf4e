// window.cohortly: the public API, the stub queue replay, automatic page views and the listeners.
import { autoPages, batchInterval } from "./config.js";
import { enabled, setConsent } from "./privacy.js";
import { build, pageProperties, forgetUser } from "./message.js";
import { enqueue, flush } from "./queue.js";
import { tagProperties } from "./tagging.js";
import { segments } from "./segments.js";

// Nothing the tracker does may throw into the page.
const safe =
  (f) =>
  (...args) => {
    try {
      f(...args);
    } catch (e) {}
  };

// Every listener is on window, in the capture phase: visibilitychange and click bubble up to it from the
// document, and the page's own handlers cannot stop them first.
const listen = (type, f) => addEventListener(type, safe(f), true);

// send(type, fields, userId): see build().
const send = (...args) => enabled() && enqueue(build(...args));
const page = (name, properties) => send("page", { name, properties: { ...pageProperties(), ...properties } });
const track = (event, properties) => send("track", { event, properties });

// ready: after the stub's calls are replayed (a replayed consent(true) or identify() comes before the first page
// view), if automatic page views are on.
let ready, lastPage;
const autoPage = safe(() => {
  if (ready && enabled() && lastPage != (lastPage = location.href)) page();
});

const api = {
  page,
  track,
  identify: (userId, traits) => send("identify", { traits }, userId),
  reset: forgetUser,
  consent: (yes) => setConsent(yes) + autoPage(),
  optOut: () => setConsent(),
  segments,
};

// build.mjs wraps all this in try/catch: nothing may throw into the page, not even reading the configuration.
const cohortly = (window.cohortly = window.cohortly || {});
if (!cohortly.v) {
  cohortly.v = VERSION;
  for (const name in api) cohortly[name] = safe(api[name]);
  // Calls made through the stub before load, in order.
  cohortly.q?.map(safe((call) => cohortly[call[0]](...call[1])));
  ready = autoPages;

  // pushState and replaceState return nothing.
  ["pushState", "replaceState"].map((method) => {
    const original = history[method];
    history[method] = (...args) => original.apply(history, args) + autoPage();
  });
  listen("popstate", autoPage);
  autoPage();

  // Declarative tagging: a click on or inside an element with data-cohortly-event.
  listen("click", (e) => {
    const el = e.target.closest("[data-cohortly-event]");
    if (el) track(el.dataset.cohortlyEvent, tagProperties(el));
  });
  listen("pagehide", () => flush(1));
  listen("visibilitychange", () => document.hidden && flush(1));
  setInterval(safe(flush), batchInterval);
}
