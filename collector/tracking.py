"""The Segment HTTP Tracking API: /v1/batch, /v1/track, /v1/page, /v1/screen, /v1/identify, /v1/alias, /v1/group,
the short paths Segment's analytics.js posts to (/v1/b, /v1/t, /v1/p, /v1/s, /v1/i, /v1/a, /v1/g), and
/beacon/v1/batch, where RudderStack's JavaScript SDK sends its beacons."""

import json
import re
import zlib

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from collector import identity, messages, store
from collector.enrich import Refused, build_row, merge_envelope, redact
from collector.schemas import TYPES, batch_schema
from core import auth, times
from core.auth import authenticate
from core.db import get_engine
from core.errors import APIError
from core.times import to_ms

bp = Blueprint("tracking", __name__)
bp.after_request(auth.cors_headers)
# A real NUL, as json.dumps writes it: \u0000 after an even number of backslashes (text that merely
# spells "\u0000" has its backslash doubled).
NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# Made once: json.dumps with options builds an encoder per call (a third of its cost for a message).
JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
ALLOWED_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"
#: How deeply a message's fields (and a batch's context/integrations) may nest objects and arrays.
MAX_DEPTH = 32
#: What one request may store, counting the batch's context and integrations once per message they are
#: merged into: this multiple of MAX_REQUEST_BYTES (stored JSON is re-encoded, so a little larger than sent).
STORE_BUDGET = 2


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
    shared_bytes = 0
    if shared:
        shared_bytes, openers = _checked_size(shared, "invalid_payload", "The batch's context or integrations")
        _check_depth(shared, openers, "invalid_payload", "The batch's context or integrations")
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
    """CORS preflight: the same permissive answer for every origin.

    Answering by whether some site allows the origin would tell anyone which origins this instance serves;
    the request itself is refused (403, no CORS headers) unless its write key's site allows the origin."""
    response = current_app.make_response(("", 204))
    origin = request.headers.get("Origin")
    if origin:
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


def _tracking_refused(site):
    """True when the browser asked not to be tracked (DNT or GPC) and the site honours it (the default)."""
    if not site["settings"].get("honor_dnt", True):
        return False
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


def _dropped(count):
    """The answer to a visitor who opted out: success (so nothing retries), nothing stored."""
    return jsonify(success=True, accepted=0, rejected=[], dropped=count, reason="do_not_track")


def _ingest(site, messages, sent_at_ms, context, integrations, shared_bytes=0):
    """Validate and enrich each message, then store the good ones and the bad ones together.

    The accepted messages' sizes (each with the batch's context and integrations) may add up to
    STORE_BUDGET × MAX_REQUEST_BYTES; the messages past that are rejected as `request_too_large`."""
    config = current_app.config
    received_at = times.now_ms()
    request_ip = request.remote_addr
    request_ua = request.headers.get("User-Agent")
    store_ip = site["settings"].get("store_ip", True)
    budget = left = STORE_BUDGET * config["MAX_REQUEST_BYTES"]
    rows, rejected, bad = [], [], []
    for index, raw in enumerate(messages):
        try:
            message, size = _validate(raw, config["MAX_MESSAGE_BYTES"], shared_bytes)
            if size > left:
                left = -1  # the first message over the budget ends it: the ones after it are refused too
                raise APIError(
                    413,
                    "request_too_large",
                    f"A request may store at most {budget} bytes of messages, "
                    "counting the batch's context and integrations in each; send the rest in another request.",
                )
            merge_envelope(message, context, integrations)
            verified = identity.verify(message, site)
            row = build_row(message, site["id"], received_at, sent_at_ms, request_ip, request_ua, store_ip)
            row["user_verified"] = verified
            rows.append(row)
            left -= size
        except (APIError, Refused) as err:
            fault = {"index": index, "code": err.code, "message": err.message}
            if err.fields:
                fault["fields"] = err.fields
            rejected.append(fault)
            # A too-deep message is kept without its nested fields: they could not be encoded.
            kept = redact(raw) if err.code != "too_deep" else _shallow(raw)
            bad.append(({k: v for k, v in fault.items() if k != "index"}, kept))
    store.store_messages(get_engine(), site["id"], rows, bad, received_at, config["BAD_ROWS_KEEP"])
    return len(rows), rejected


def _validate(raw, max_bytes, shared_bytes=0):
    """(the loaded message, its size with the batch's shared context), or APIError."""
    if not isinstance(raw, dict):
        raise APIError(400, "invalid_message", "A message must be a JSON object.")
    size, openers = _checked_size(raw, "invalid_message", "The message", "too_deep")
    size += shared_bytes
    if size > max_bytes:
        shared = " with the batch's context and integrations" if shared_bytes else ""
        raise APIError(
            413, "message_too_large", f"A message may be at most {max_bytes} bytes{shared}; this one is {size}."
        )
    _check_depth(raw, openers, "too_deep", "The message")
    try:
        return messages.load(raw), size
    except ValidationError as err:
        raise APIError(400, "invalid_message", "The message is not valid.", err.messages) from None


def _checked_size(value, code, what, deep_code=None):
    """(size of `value` as UTF-8 JSON, how many objects and arrays it opens); 400 `code` if it holds what the
    databases cannot store, 400 `deep_code` (default `code`) if it nests too deeply to encode."""
    try:
        text = JSON_ENCODER.encode(value)
    except ValueError:
        raise APIError(400, code, f"{what} holds NaN or Infinity, which JSON does not allow.") from None
    except RecursionError:
        raise APIError(
            400, deep_code or code, f"{what} nests objects or arrays more than {MAX_DEPTH} levels deep."
        ) from None
    # The substring test is ~100 times cheaper than the regex, which only tells a NUL from its spelling.
    if "\\u0000" in text and NUL.search(text):
        raise APIError(400, code, f"{what} holds a NUL character.")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise APIError(400, code, f"{what} holds invalid unicode (a lone surrogate).") from None
    # An upper bound of the nesting depth, at C speed (brackets inside strings count too).
    return size, text.count("{") + text.count("[")


def _check_depth(value, openers, code, what):
    """400 `code` when a field of the object `value` nests more than MAX_DEPTH levels deep.

    `openers` bounds the depth of `value`: the walk runs only for the rare message that opens many brackets."""
    if openers <= MAX_DEPTH + 1:
        return
    for key, field in value.items():
        if _deeper_than(field, MAX_DEPTH):
            raise APIError(
                400,
                code,
                f"{what} nests objects or arrays more than {MAX_DEPTH} levels deep.",
                {key: [f"Nested more than {MAX_DEPTH} levels deep."]},
            )


def _deeper_than(value, limit):
    """Whether `value` nests objects/arrays more than `limit` levels (it recurses at most limit + 1 deep)."""
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    if limit == 0:
        return True
    return any(_deeper_than(child, limit - 1) for child in children)


def _shallow(raw):
    """A message without its object and array fields (what is kept of a message too deep to encode)."""
    return {key: value for key, value in redact(raw).items() if not isinstance(value, (dict, list))}


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
    except RecursionError:
        raise APIError(
            400,
            "invalid_json",
            f"The body nests objects or arrays too deeply (at most {MAX_DEPTH} levels in a message's fields).",
        ) from None
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
    if not inflater.eof:
        raise APIError(400, "invalid_body", "The gzip body is truncated.")
    if inflater.unused_data:
        raise APIError(400, "invalid_body", "The body has bytes after its gzip stream.")
    return out


def init_app(app):
    """The tracking routes; answers carry CORS headers for the authenticated site's origins."""
    app.register_blueprint(bp)
