// Settings from the <script> tag's data-* attributes (see README.md).
const script = document.currentScript;
const data = script.dataset;

// The collector is at data-api, else at the origin the script was loaded from.
const apiRoot = (data.api || new URL(script.src).origin) + "/v1/";

// The URL of one of the collector's endpoints: endpoint("batch") is {api}/v1/batch?writeKey=KEY.
export const endpoint = (path) => apiRoot + path + "?writeKey=" + data.key;

export const consentRequired = data.consent; // "required"; any value counts
export const autoPages = data.auto != "false";
export const batchSize = Number(data.batch) || 10;
export const batchInterval = Number(data.interval) || 3000; // milliseconds
