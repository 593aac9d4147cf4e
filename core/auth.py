"""Who is asking: a site's public write key (tracking, a visitor's own segments) or its secret API key (the
segment API and webhooks). Both end in the site as a dict, or in an APIError."""

import base64
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request

from core import sites
from core.db import connection, get_engine
from core.errors import APIError
from core.ratelimit import RateLimiter, client_of


def authenticate(body: Mapping[str, Any]) -> dict[str, Any]:
    """The site of the request's write key (Basic auth user, body `writeKey` or `?writeKey=`), within its rate
    limits; a browser's Origin must be one of the site's."""
    key = _write_key(body)
    if not key:
        raise APIError(
            401,
            "missing_write_key",
            "Send the write key as the Basic auth user name, `writeKey` in the body or `?writeKey=`.",
        )
    site = _site_for(key)
    if site is None:
        raise APIError(401, "invalid_write_key", "Unknown write key.")
    g.site = site
    origin = request.headers.get("Origin")
    if origin and not _origin_allowed(site, origin):
        raise APIError(403, "origin_not_allowed", f"Origin {origin} may not send events for this site.")
    # The client's own budget first: a client over it spends none of the write key's, which others share.
    extensions = current_app.extensions
    client = client_of(request.remote_addr)
    if not extensions["cohortly_client_rate_limiter"].allow((key, client)):
        retry_after = str(current_app.config["RETRY_AFTER"])
        raise APIError(429, "rate_limited", "Too many requests from this client.", headers={"Retry-After": retry_after})
    if not extensions["cohortly_rate_limiter"].allow(key):
        retry_after = str(current_app.config["RETRY_AFTER"])
        raise APIError(
            429, "rate_limited", "Too many requests for this write key.", headers={"Retry-After": retry_after}
        )
    return site


def cors_headers(response: Response) -> Response:
    """Let a browser on one of the authenticated site's origins read the answer (after_request of write-key routes)."""
    origin = request.headers.get("Origin")
    site = g.get("site")
    if origin and site and _origin_allowed(site, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers.add("Vary", "Origin")
    return response


def require_api_key() -> dict[str, Any]:
    """The site of `Authorization: Bearer API_KEY` (kept in `g.api_site`); a write key never reads."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    challenge = {"WWW-Authenticate": 'Bearer realm="cohortly"'}
    if not token:
        raise APIError(401, "missing_api_key", "Send `Authorization: Bearer API_KEY`.", headers=challenge)
    site = sites.find_site(connection(), api_key=token)
    if site is None:
        if sites.find_site(get_engine(), write_key=token):
            raise APIError(403, "write_key_cannot_read", "A write key can only send events; use the API key.")
        raise APIError(401, "invalid_api_key", "Unknown API key.", headers=challenge)
    g.api_site = site
    return site


def _write_key(body):
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            user = base64.b64decode(header[6:], validate=True).decode("utf-8").split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            raise APIError(401, "invalid_write_key", "The Authorization header is not valid Basic auth.") from None
        if user:
            return user
    key = body.get("writeKey") or request.args.get("writeKey")
    return key if isinstance(key, str) else None


def _site_for(write_key):
    """The site of a write key, cached per worker for SITE_CACHE_SECONDS."""
    cache = current_app.extensions["cohortly_site_cache"]
    hit = cache.get(write_key)
    now = time.monotonic()
    if hit and hit[1] > now:
        return hit[0]
    site = sites.find_site(get_engine(), write_key=write_key)
    if len(cache) > 10000:
        cache.clear()
    cache[write_key] = (site, now + current_app.config["SITE_CACHE_SECONDS"])
    return site


def _origin_allowed(site, origin):
    origins = site["origins"] or []
    return "*" in origins or origin in origins


def init_app(app: Flask) -> None:
    """Per-worker state of write-key authentication: the rate limiters and the site cache."""
    config = app.config
    app.extensions["cohortly_rate_limiter"] = RateLimiter(config["RATE_LIMIT"], config["RATE_BURST"])
    app.extensions["cohortly_client_rate_limiter"] = RateLimiter(
        config["CLIENT_RATE_LIMIT"], config["CLIENT_RATE_BURST"]
    )
    app.extensions["cohortly_site_cache"] = {}
