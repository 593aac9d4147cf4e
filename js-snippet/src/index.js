// window.cohortly: the public API, the stub queue replay, automatic page views and the listeners.
import { autoPages, batchInterval } from "./config.js";
import { enabled, setConsent } from "./privacy.js";
import { build, pageProperties, forgetUser } from "./message.js";
import { enqueue, flush } from "./queue.js";
import { tagProperties } from "./tagging.js";
import { segments } from "./segments.js";

// Nothing the tracker does may throw into the page: safe(f) is f with every error swallowed.
const safe =
  (f) =>
  (...args) => {
    try {
      f(...args);
    } catch (e) {}
  };

// Every listener is on window, in the capture phase: visibilitychange and click bubble up to it from the
// document, and the page's own handlers cannot stop them first.
const listen = (type, listener) => addEventListener(type, safe(listener), true);

// send(type, fields, userId): see build().
const send = (...args) => {
  if (enabled()) enqueue(build(...args));
};
const page = (name, properties) => send("page", { name, properties: { ...pageProperties(), ...properties } });
const track = (event, properties) => send("track", { event, properties });

// Automatic page views start once the stub's calls are replayed (so a replayed consent(true) or identify()
// comes before the first one), if data-auto allows them. One page view per URL change.
let autoPagesOn = false;
let lastUrl;
const autoPage = safe(() => {
  if (autoPagesOn && enabled() && location.href != lastUrl) {
    lastUrl = location.href;
    page();
  }
});

const api = {
  page,
  track,
  identify: (userId, traits) => send("identify", { traits }, userId),
  reset: forgetUser,
  consent: (yes) => {
    setConsent(yes);
    autoPage();
  },
  optOut: () => setConsent(false),
  segments,
};

// build.mjs wraps all this in try/catch: nothing may throw into the page, not even reading the configuration.
const cohortly = (window.cohortly = window.cohortly || {});
if (!cohortly.v) {
  cohortly.v = VERSION;
  for (const name in api) cohortly[name] = safe(api[name]);
  // Calls made through the stub before load, in order: each is [method, arguments].
  cohortly.q?.forEach(safe(([method, args]) => cohortly[method](...args)));
  autoPagesOn = autoPages;

  ["pushState", "replaceState"].forEach((method) => {
    const original = history[method];
    history[method] = (...args) => {
      original.apply(history, args);
      autoPage();
    };
  });
  listen("popstate", autoPage);
  autoPage();

  // Declarative tagging: a click on or inside an element with data-cohortly-event.
  listen("click", (event) => {
    const element = event.target.closest("[data-cohortly-event]");
    if (element) track(element.dataset.cohortlyEvent, tagProperties(element));
  });
  listen("pagehide", () => flush(true));
  listen("visibilitychange", () => {
    if (document.hidden) flush(true);
  });
  setInterval(safe(flush), batchInterval);
}
