// One guard for everything that stores or sends: DNT, GPC, consent and opt-out.
import { consentRequired } from "./config.js";
import { PREFIX, read, write, storage } from "./store.js";

// doNotTrack is "1" when on (navigator's, or window's in older Safari); both are concatenated and searched.
const signalled = /1/.test(navigator.doNotTrack + window.doNotTrack) || navigator.globalPrivacyControl;

// "c" is "1" after consent(true), "0" after optOut() / consent(false). An explicit consent wins over DNT/GPC.
export const enabled = () => {
  const c = read("c");
  return c == 1 || (c != 0 && !consentRequired && !signalled);
};

// consent(false) and optOut() forget everything stored and remember only the refusal.
export const setConsent = (yes) => {
  if (!yes) for (const key in storage) key.indexOf(PREFIX) || delete storage[key];
  write("c", +!!yes);
};
