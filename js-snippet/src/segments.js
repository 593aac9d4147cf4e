// cohortly.segments(callback): the visitor's segment names, from the collector's GET /v1/segments/me, for
// on-site personalisation ("we noticed you browsed ...").
import { endpoint } from "./config.js";
import { enabled } from "./privacy.js";
import { read } from "./store.js";

// The callback gets the names once, always later (never during the call): [] when tracking is off, when the
// visitor has no anonymousId yet or when anything fails. The anonymousId is the tracker's own (digits and "-"):
// no escaping needed. An error thrown by the callback is the page's own and stays visible (the promise returned
// rejects, unhandled).
export const segments = (callback) =>
  Promise.resolve(enabled() && read("a"))
    .then((anonymousId) => {
      // No anonymousId: nothing was sent, so the collector cannot know the visitor. No request; an empty answer.
      if (!anonymousId) return {};
      return fetch(endpoint("segments/me") + "&anonymousId=" + anonymousId).then((response) => response.json());
    })
    .then(
      (answer) => callback(answer.segments || []),
      () => callback([]) // the request failed, or its answer was not JSON
    );
