"""Default settings. Each can be set by an environment variable `COHORTLY_<NAME>`."""

from typing import Any

#: name -> (default, help). The README's settings table is checked against this.
SETTINGS = {
    "DATABASE_URL": (None, "SQLAlchemy URL; default: a SQLite file `cohortly.db` in the instance folder"),
    "SQLITE_TIMEOUT": (5.0, "Seconds a SQLite writer waits for a lock before the request gets 503"),
    "MAX_REQUEST_BYTES": (500 * 1024, "Largest request body accepted (after gunzip)"),
    "MAX_MESSAGE_BYTES": (32 * 1024, "Largest single message accepted inside a request"),
    "MAX_BATCH_MESSAGES": (2500, "Most messages in one /v1/batch request"),
    "RATE_LIMIT": (1000, "Requests per second per write key and worker (token bucket); 0 turns it off"),
    "RATE_BURST": (2000, "Requests a write key may send at once before RATE_LIMIT applies"),
    "CLIENT_RATE_LIMIT": (
        100,
        "Requests per second per client (IPv4 address or IPv6 /64) and write key, per worker; 0 turns it off",
    ),
    "CLIENT_RATE_BURST": (200, "Requests one client may send at once before CLIENT_RATE_LIMIT applies"),
    "RETRY_AFTER": (5, "Seconds a client is told to wait after a 429 or 503"),
    "TRUSTED_PROXIES": (0, "How many reverse proxies set X-Forwarded-For in front of the collector"),
    "SITE_CACHE_SECONDS": (10, "How long a worker caches a site looked up by its write key"),
    "SNIPPET_PATH": (None, "A second, neutral path the tracker is served at, e.g. /assets/site.js"),
    "STALE_AFTER": (3600, "Seconds after the last rollup when the API calls a segment stale"),
    "BAD_ROWS_KEEP": (10000, "Bad rows kept per site; older ones are dropped"),
    "WEBHOOK_ALLOW_NETWORKS": (
        None,
        "Comma-separated networks webhooks may reach though not public, e.g. "
        "127.0.0.0/8 for a receiver on this host; default: public addresses only",
    ),
    "DASHBOARD_SESSION_SECONDS": (
        8 * 3600,
        "How long a dashboard sign-in lasts (signing out or `cohortly sites rotate-key` ends it sooner)",
    ),
    "READ_TIMEOUT": (
        15,
        "Seconds a client of `cohortly serve` has to send a whole request (headers and body); "
        "slower ones are disconnected",
    ),
}


class SettingError(ValueError):
    """A setting's value that Cohortly cannot start with; its message says which and why."""


def defaults() -> dict[str, Any]:
    """The default configuration as a dict for `app.config`."""
    return {name: default for name, (default, _help) in SETTINGS.items()}
