// Settings from the <script> tag's data-* attributes (see README.md).
const script = document.currentScript;
const data = script.dataset;

// The API host defaults to the origin the script was loaded from. endpoint("batch"): {api}/v1/batch?writeKey=KEY
const api = (data.api || new URL(script.src).origin) + "/v1/";
export const endpoint = (path) => api + path + "?writeKey=" + data.key;
export const consentRequired = data.consent; // "required"; any value counts
export const autoPages = data.auto != "false";
export const batchSize = +data.batch || 10;
export const batchInterval = +data.interval || 3e3;
