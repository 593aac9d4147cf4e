// One guard for everything that stores or sends: DNT, GPC, consent and opt-out.
import { consentRequired } from "./config.js";
import { PREFIX, read, write, storage } from "./store.js";

// Off until consent(true): with data-consent, or when the browser signals DNT or GPC. doNotTrack is "1" when on
// (navigator's, or window's in older Safari); both are concatenated and searched.
const offByDefault =
  consentRequired || /1/.test(navigator.doNotTrack + window.doNotTrack) || navigator.globalPrivacyControl;

// "c" is "1" after consent(true), "0" after optOut() / consent(false). An explicit consent wins over DNT/GPC.
// Called without arguments (c is a parameter only because that builds smaller than a local).
export const enabled = (c = read("c")) => c == 1 || (c != 0 && !offByDefault);

// consent(false) and optOut() forget everything stored and remember only the refusal.
export const setConsent = (yes) => {
  if (!yes) for (const key in storage) key.indexOf(PREFIX) || delete storage[key];
  write("c", +!!yes);
};
