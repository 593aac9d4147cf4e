// localStorage, read and written as storage[key]. Where the page may not use it, reading it throws and the
// tracker stays off. Every key the tracker writes starts with PREFIX.
export const PREFIX = "cohortly.";
export const storage = localStorage;

export const read = (name) => storage[PREFIX + name];

export const write = (name, value) => (storage[PREFIX + name] = value);
export const remove = (name) => delete storage[PREFIX + name];

export const now = Date.now; // now(): the time in milliseconds
