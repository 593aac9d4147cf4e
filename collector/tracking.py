"""The Segment HTTP Tracking API: /v1/batch, /v1/track, /v1/page, /v1/screen, /v1/identify, /v1/alias, /v1/group,
the short paths Segment's analytics.js posts to (/v1/b, /v1/t, /v1/p, /v1/s, /v1/i, /v1/a, /v1/g), and
/beacon/v1/batch, where RudderStack's JavaScript SDK sends its beacons."""
import base64
import json
import re
import time
import zlib

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from collector import identity, messages, store
from collector.db import get_engine
from collector.enrich import build_row, merge_envelope, redact, to_ms
from collector.errors import APIError
from collector.ratelimit import RateLimiter
from collector.schemas import TYPES, batch_schema

bp = Blueprint("tracking", __name__)
# A real NUL, as json.dumps writes it: \u0000 after an even number of backslashes (text that merely
# spells "\u0000" has its backslash doubled).
NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# Made once: json.dumps with options builds an encoder per call (a third of its cost for a message).
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
ALLOWED_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"


@bp.route("/v1/batch", methods=["POST"], provide_automatic_options=False)
@bp.route("/v1/b", methods=["POST"], provide_automatic_options=False)
@bp.route("/beacon/v1/batch", methods=["POST"], provide_automatic_options=False)
def batch():
    body = _read_json()
    site = authenticate(body)
    try:
        envelope = batch_schema.load(body)
    except ValidationError as err:
        raise APIError(400, "invalid_payload", "The batch envelope is not valid.", err.messages) from None
    limit = current_app.config["MAX_BATCH_MESSAGES"]
    if len(envelope["batch"]) > limit:
        raise APIError(413, "payload_too_large", f"A batch holds at most {limit} messages.")
    if _tracking_refused(site):
        return _dropped(len(envelope["batch"]))
    # The batch's context and integrations go into every message: check them once, count them in each size.
    shared = {key: envelope[key] for key in ("context", "integrations") if envelope.get(key)}
    shared_bytes = _checked_size(shared, "invalid_payload", "The batch's context or integrations") if shared else 0
    sent_at = envelope.get("sentAt")
    accepted, rejected = _ingest(
        site,
        envelope["batch"],
        to_ms(sent_at) if sent_at else None,
        envelope.get("context"),
        envelope.get("integrations"),
        shared_bytes,
    )
    return jsonify(success=True, accepted=accepted, rejected=rejected)


def _single(kind):
    def view():
        body = _read_json()
        site = authenticate(body)
        if body.get("type") is None:
            body["type"] = kind
        if body["type"] != kind:
            raise APIError(400, "invalid_message", f"This endpoint takes {kind} messages.", {"type": [kind]})
        if _tracking_refused(site):
            return _dropped(1)
        accepted, rejected = _ingest(site, [body], None, None, None)
        if rejected:
            fault = rejected[0]
            raise APIError(400, fault["code"], fault["message"], fault.get("fields"))
        return jsonify(success=True, accepted=accepted, rejected=[])

    view.__name__ = kind
    return view


for _kind in TYPES:
    _view = _single(_kind)
    bp.add_url_rule(f"/v1/{_kind}", view_func=_view, methods=["POST"], provide_automatic_options=False)
    # analytics.js 2.0 posts each message to its type's first letter, as Segment's API accepts (t, p, s, i, a, g).
    bp.add_url_rule(f"/v1/{_kind[0]}", f"{_kind}_short", _view, methods=["POST"], provide_automatic_options=False)


@bp.route("/v1/<path:_any>", methods=["OPTIONS"])
def preflight(_any):
    """CORS preflight: answered for origins that some site allows."""
    origin = request.headers.get("Origin")
    if not origin or not _origin_known(origin):
        raise APIError(403, "origin_not_allowed", "This origin may not send events.")
    response = current_app.make_response(("", 204))
    response.headers.update(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin",
        }
    )
    return response


@bp.after_request
def cors_headers(response):
    origin = request.headers.get("Origin")
    site = g.get("site")
    if origin and site and _origin_allowed(site, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers.add("Vary", "Origin")
    return response


def _tracking_refused(site):
    """True when the browser asked not to be tracked (DNT or GPC) and the site honours it (the default)."""
    if not site["settings"].get("honor_dnt", True):
        return False
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


def _dropped(count):
    """The answer to a visitor who opted out: success (so nothing retries), nothing stored."""
    return jsonify(success=True, accepted=0, rejected=[], dropped=count, reason="do_not_track")


def _ingest(site, messages, sent_at_ms, context, integrations, shared_bytes=0):
    """Validate and enrich each message, then store the good ones and the bad ones together."""
    config = current_app.config
    received_at = store.now_ms()
    request_ip = request.remote_addr
    request_ua = request.headers.get("User-Agent")
    store_ip = site["settings"].get("store_ip", True)
    rows, rejected, bad = [], [], []
    for index, raw in enumerate(messages):
        try:
            message = _validate(raw, config["MAX_MESSAGE_BYTES"], shared_bytes)
            merge_envelope(message, context, integrations)
            verified = identity.verify(message, site)
        except APIError as err:
            fault = {"index": index, "code": err.code, "message": err.message}
            if err.fields:
                fault["fields"] = err.fields
            rejected.append(fault)
            bad.append(({k: v for k, v in fault.items() if k != "index"}, redact(raw)))
            continue
        row = build_row(message, site["id"], received_at, sent_at_ms, request_ip, request_ua, store_ip)
        row["user_verified"] = verified
        rows.append(row)
    store.store_messages(get_engine(), site["id"], rows, bad, received_at, config["BAD_ROWS_KEEP"])
    return len(rows), rejected


def _validate(raw, max_bytes, shared_bytes=0):
    if not isinstance(raw, dict):
        raise APIError(400, "invalid_message", "A message must be a JSON object.")
    size = _checked_size(raw, "invalid_message", "The message") + shared_bytes
    if size > max_bytes:
        shared = " with the batch's context and integrations" if shared_bytes else ""
        raise APIError(413, "message_too_large", f"A message may be at most {max_bytes} bytes{shared}; this one is {size}.")
    try:
        return messages.load(raw)
    except ValidationError as err:
        raise APIError(400, "invalid_message", "The message is not valid.", err.messages) from None


def _checked_size(value, code, what):
    """The size of `value` as UTF-8 JSON; 400 `code` if it holds what the databases cannot store."""
    try:
        text = JSON_ENCODER.encode(value)
    except ValueError:
        raise APIError(400, code, f"{what} holds NaN or Infinity, which JSON does not allow.") from None
    # The substring test is ~100 times cheaper than the regex, which only tells a NUL from its spelling.
    if "\\u0000" in text and NUL.search(text):
        raise APIError(400, code, f"{what} holds a NUL character.")
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise APIError(400, code, f"{what} holds invalid unicode (a lone surrogate).") from None


def _read_json():
    """The request body as a JSON object; gzip allowed; 4xx for anything else."""
    limit = current_app.config["MAX_REQUEST_BYTES"]
    data = request.get_data(cache=False)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        data = _gunzip(data, limit)
    if len(data) > limit:
        raise APIError(413, "payload_too_large", f"A request may be at most {limit} bytes.")
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise APIError(400, "invalid_json", "The body is not valid UTF-8.") from None
    except ValueError as err:
        raise APIError(400, "invalid_json", f"The body is not valid JSON: {err}.") from None
    if not isinstance(body, dict):
        raise APIError(400, "invalid_json", "The body must be a JSON object.")
    return body


def _gunzip(data, limit):
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise APIError(400, "invalid_body", "The body is not valid gzip.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise APIError(413, "payload_too_large", f"A request may be at most {limit} bytes.")
    return out


def authenticate(body):
    """The site of the request's write key (Basic auth user, body `writeKey` or `?writeKey=`)."""
    key = _write_key(body)
    if not key:
        raise APIError(401, "missing_write_key", "Send the write key as the Basic auth user name, `writeKey` in the body or `?writeKey=`.")
    site = _site_for(key)
    if site is None:
        raise APIError(401, "invalid_write_key", "Unknown write key.")
    g.site = site
    origin = request.headers.get("Origin")
    if origin and not _origin_allowed(site, origin):
        raise APIError(403, "origin_not_allowed", f"Origin {origin} may not send events for this site.")
    if not current_app.extensions["cohortly_rate_limiter"].allow(key):
        retry_after = str(current_app.config["RETRY_AFTER"])
        raise APIError(429, "rate_limited", "Too many requests for this write key.", headers={"Retry-After": retry_after})
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
    site = store.find_site(get_engine(), write_key=write_key)
    if len(cache) > 10000:
        cache.clear()
    cache[write_key] = (site, now + current_app.config["SITE_CACHE_SECONDS"])
    return site


def _origin_allowed(site, origin):
    origins = site["origins"] or []
    return "*" in origins or origin in origins


def _origin_known(origin):
    key = request.args.get("writeKey")
    if key:
        site = _site_for(key)
        return bool(site) and _origin_allowed(site, origin)
    return any(_origin_allowed(site, origin) for site in store.list_sites(get_engine()))


def init_app(app):
    """Per-worker state of the tracking API: the rate limiter and the site cache."""
    app.extensions["cohortly_rate_limiter"] = RateLimiter(app.config["RATE_LIMIT"], app.config["RATE_BURST"])
    app.extensions["cohortly_site_cache"] = {}
    app.register_blueprint(bp)
