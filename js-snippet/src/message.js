// Segment-format messages.
import { read, write, remove } from "./store.js";

// 128 random bits as four decimal numbers joined by "-"; crypto.getRandomValues, unlike crypto.randomUUID, works
// outside secure contexts (plain-http pages) too.
export const randomId = () => crypto.getRandomValues(new Uint32Array(4)).join("-");

export const pageProperties = () => ({
  path: location.pathname,
  url: location.href,
  title: document.title,
  referrer: document.referrer,
  search: location.search,
});

// A message of this type with these fields. identify passes userId, which every later message carries too.
export const build = (type, fields, userId) => {
  // The visitor's anonymousId is made with their first message.
  if (!read("a")) write("a", randomId());
  if (userId) write("u", userId);
  return {
    ...fields,
    type,
    anonymousId: read("a"),
    userId: read("u"),
    messageId: randomId(),
    timestamp: new Date().toISOString(),
    context: {
      page: pageProperties(),
      library: { name: "cohortly.js", version: VERSION },
      locale: navigator.language,
    },
  };
};

export const forgetUser = () => {
  remove("a");
  remove("u");
};
