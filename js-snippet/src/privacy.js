// One guard for everything that stores or sends: DNT, GPC, consent and opt-out.
import { consentRequired } from "./config.js";
import { PREFIX, read, write, storage } from "./store.js";

// Off until consent(true): with data-consent, or when the browser signals Do-Not-Track ("1": navigator.doNotTrack,
// or window.doNotTrack in older Safari) or Global Privacy Control.
const offUntilConsent =
  consentRequired || navigator.doNotTrack == "1" || window.doNotTrack == "1" || navigator.globalPrivacyControl;

// The visitor's choice is stored under "c": "1" after consent(true), "0" after optOut() / consent(false).
// An explicit choice wins over DNT and GPC.
export const enabled = () => read("c") == 1 || (read("c") != 0 && !offUntilConsent);

// consent(false) and optOut() forget everything stored and remember only the refusal.
export const setConsent = (yes) => {
  if (!yes) {
    for (const key in storage) {
      if (key.startsWith(PREFIX)) delete storage[key];
    }
  }
  write("c", yes ? 1 : 0);
};
