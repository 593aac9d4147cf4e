// Segment-format messages.
import { read, write, remove } from "./store.js";

// 128 random bits; crypto.getRandomValues, unlike randomUUID, works outside secure contexts too.
export const randomId = () => crypto.getRandomValues(new Uint32Array(4)).join("-");

export const pageProperties = (l = location) => ({
  path: l.pathname,
  url: l.href,
  title: document.title,
  referrer: document.referrer,
  search: l.search,
});

// identify passes userId, which later messages carry too.
export const build = (type, message, userId) => ({
  ...message,
  type,
  anonymousId: read("a") || write("a", randomId()),
  userId: (userId && write("u", userId), read("u")),
  messageId: randomId(),
  timestamp: new Date().toISOString(),
  context: {
    page: pageProperties(),
    library: { name: "cohortly.js", version: VERSION },
    locale: navigator.language,
  },
});

export const forgetUser = () => remove("a") + remove("u");
