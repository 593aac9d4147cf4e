"""The segment API under /api/v1 (API key) and the visitor's own segments at /v1/segments/me (write key)."""
import glob
import json
import os
import time

from flask import Response, current_app, g, jsonify, request, send_from_directory, stream_with_context
from flask_smorest import Api, Blueprint

from collector import store as collector_store
from collector.db import get_engine
from collector.enrich import to_ms
from collector.errors import APIError, error_response, http_error
from collector.tracking import authenticate, cors_headers
from segmenter import members, policy, privacy, rules, store
from segmenter.api_schemas import (
    ChangePageSchema, ChangesQuery, ErasureSchema, ExportQuery, MemberPageSchema, MembersQuery, ProfileSchema,
    SegmentListSchema, SegmentSchema, VisitorQuery, VisitorSegmentsSchema,
)
from segmenter.exports import csv_lines, in_blocks, member_record, ndjson_lines
from segmenter.schemas import load_settings

STATIC = os.path.join(os.path.dirname(__file__), "static")
# ReDoc for /api/v1/docs, vendored by scripts/vendor-redoc; the version in its name makes the URL immutable.
REDOC = os.path.basename(max(glob.glob(os.path.join(STATIC, "redoc-*.standalone.js"))))
ASSETS = "/api/v1/assets"
bp = Blueprint("segments", __name__, url_prefix="/api/v1", description="Segments, members, changes and profiles (API key).")
visitor_bp = Blueprint("visitor", __name__, url_prefix="/v1", description="A visitor's own segments (write key).")
HISTORY_KEPT = 200


class CohortlyApi(Api):
    """flask-smorest's Api answering every HTTP error in Cohortly's one error shape."""

    def handle_http_exception(self, error):
        messages = (getattr(error, "data", None) or {}).get("messages")
        if messages is not None:  # webargs: invalid query or body
            fields = messages.get("query") or messages.get("json") or messages
            return error_response(422, "invalid_request", "The request's arguments are not valid.", fields)
        return http_error(error)


@bp.before_request
def require_api_key():
    """Every /api/v1 route needs `Authorization: Bearer API_KEY`; a write key never reads."""
    if request.method == "OPTIONS":
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    challenge = {"WWW-Authenticate": 'Bearer realm="cohortly"'}
    if not token:
        raise APIError(401, "missing_api_key", "Send `Authorization: Bearer API_KEY`.", headers=challenge)
    site = collector_store.find_site(connection(), api_key=token)
    if site is None:
        if collector_store.find_site(get_engine(), write_key=token):
            raise APIError(403, "write_key_cannot_read", "A write key can only send events; use the API key.")
        raise APIError(401, "invalid_api_key", "Unknown API key.", headers=challenge)
    g.api_site = site
    return None


def connection():
    """The request's one database connection, opened on first use, closed when the request ends.

    Authentication, settings, the size check and the page share it: each pool checkout costs a pre-ping on
    PostgreSQL and a BEGIN/ROLLBACK on SQLite (0.4-0.8 ms), and a member page took four.
    """
    if "db" not in g:
        g.db = get_engine().connect()
    return g.db


def close_connection(_error=None):
    """Give the request's connection back to the pool (at the request's end, or before a long stream)."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def reject_nul():
    """A NUL cannot be stored in, nor looked up from, PostgreSQL text: a path or query holding one is invalid."""
    arguments = [*(request.view_args or {}).items(), *request.args.items(multi=True)]
    bad = {name: ["Contains a NUL character."] for name, value in arguments if isinstance(value, str) and "\x00" in value}
    if bad:
        raise APIError(422, "invalid_request", "The request's arguments are not valid.", bad)


bp.before_request(reject_nul)


def _segment_or_404(name):
    if name not in rules.RULES_BY_NAME:
        raise APIError(404, "unknown_segment", f"No segment named {name!r}.")
    return rules.RULES_BY_NAME[name]


@bp.route("/segments")
@bp.response(200, SegmentListSchema)
def list_segments():
    """Every segment with its definition, thresholds, size and freshness."""
    return {"segments": _segments()}


@bp.route("/segments/<name>")
@bp.response(200, SegmentSchema)
def get_segment(name):
    """One segment with its definition, thresholds, size and freshness."""
    _segment_or_404(name)
    return next(segment for segment in _segments() if segment["name"] == name)


def _segments():
    conn, site_id = connection(), g.api_site["id"]
    settings = load_settings(g.api_site["settings"])
    shown = store.describe_settings(settings)
    computed = members.last_computed(conn, site_id)
    age = None if computed is None else max(0, (int(time.time() * 1000) - computed) // 1000)
    stale_after = current_app.config["STALE_AFTER"]
    found = []
    for segment in store.describe_segments(conn, site_id, settings):
        rule = rules.RULES_BY_NAME[segment["name"]]
        definition, used = rule_definition(rule, shown)
        found.append({
            "name": rule.name,
            "description": segment["description"],
            "definition": definition,
            "thresholds": {name: shown[name] for name in used},
            "size": segment["members"],
            "min_size": segment["min_size"],
            "too_small": segment["too_small"],
            "last_computed_at": computed,
            "age_seconds": age,
            "stale": age is None or age > stale_after,
        })
    return found


def rule_definition(rule, shown):
    """A rule as JSON-ready data, and the names of the settings it uses."""
    used = []

    def condition(cond):
        out = {"op": cond.op, "fact": cond.field}
        if cond.op == "any":
            out["any"] = [condition(inner) for inner in cond.arg]
        elif isinstance(cond.arg, tuple):
            out["later_than"] = list(cond.arg)
        elif isinstance(cond.arg, str):
            used.append(cond.arg)
            out["setting"], out["value"] = cond.arg, shown[cond.arg]
        elif cond.arg is not None:
            out["value"] = cond.arg
        return out

    definition = {
        "requires": [condition(c) for c in rule.requires],
        "conditions": [condition(c) for c in rule.conditions],
        "context": rule.context,
    }
    return definition, list(dict.fromkeys(used))


@bp.route("/segments/<name>/members")
@bp.arguments(MembersQuery, location="query")
@bp.response(200, MemberPageSchema)
def list_members(args, name):
    """Members by cursor, with what a message needs; `entered_since` filters."""
    _segment_or_404(name)
    after = members.decode_cursor(args["cursor"]) if args.get("cursor") else None
    if args.get("cursor") and (after is None or "\x00" in after):  # PostgreSQL text cannot hold a NUL
        raise APIError(422, "invalid_request", "The cursor is not valid.", {"cursor": ["Not a cursor of this API."]})
    since = to_ms(args["entered_since"]) if args.get("entered_since") else None
    settings = _exportable(name)
    page = members.member_page(connection(), g.api_site["id"], name, after, args["limit"], since)
    cursor = members.encode_cursor(page[-1]["profile_id"]) if len(page) == args["limit"] else None
    # What MemberPageSchema would dump (a test holds the bodies equal), for less than half its cost.
    shown = [member_record(row) for row in policy.shown_members(settings, page)]
    return jsonify({"members": shown, "next_cursor": cursor})


def _exportable(name, history=False):
    """The site's settings, once the segment may be listed: 403 under the site's minimum export size k."""
    settings = load_settings(g.api_site["settings"])
    # Counting past the minimum would make every member page cost a scan of the whole segment.
    size = store.count_members(connection(), g.api_site["id"], name, up_to=policy.sizes_needed(settings))
    refusal = policy.refusal(settings, size, history)
    if refusal:
        raise APIError(403, "segment_too_small", refusal)
    return settings


def _export(name, args, render, mimetype, extension):
    _segment_or_404(name)
    settings = _exportable(name)
    close_connection()  # the stream takes a short transaction per page of its own
    engine, site_id = get_engine(), g.api_site["id"]
    since = to_ms(args["entered_since"]) if args.get("entered_since") else None
    rows = policy.shown_members(settings, members.stream_members(engine, site_id, name, since))
    response = Response(stream_with_context(in_blocks(render(rows))), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@bp.route("/segments/<name>/members.ndjson")
@bp.arguments(ExportQuery, location="query")
@bp.doc(responses={"200": {"description": "One member a line", "content": {"application/x-ndjson": {}}}})
def export_ndjson(args, name):
    """Every member as newline-delimited JSON, streamed (no row cap, flat memory)."""
    return _export(name, args, ndjson_lines, "application/x-ndjson", "ndjson")


@bp.route("/segments/<name>/members.csv")
@bp.arguments(ExportQuery, location="query")
@bp.doc(responses={"200": {"description": "One member a row", "content": {"text/csv": {}}}})
def export_csv(args, name):
    """Every member as CSV, streamed (no row cap, flat memory); `context` is a JSON column."""
    return _export(name, args, csv_lines, "text/csv", "csv")


@bp.route("/segments/<name>/changes")
@bp.arguments(ChangesQuery, location="query")
@bp.response(200, ChangePageSchema)
def list_changes(args, name):
    """The enter/exit feed of a segment after the cursor `since`, oldest first.

    The site's policy applies as to member lists: 403 under k (also for an empty segment: the feed names past
    members), and with `require_consent` the changes of profiles without consent are left out (the cursor
    still moves past them)."""
    _segment_or_404(name)
    settings = _exportable(name, history=True)
    conn = connection()
    page = members.change_page(conn, g.api_site["id"], args["since"], args["limit"], segment=name)
    shown = members.shown_changes(conn, g.api_site["id"], settings, page)
    return {"changes": shown, "next_cursor": page[-1]["id"] if page else args["since"]}


@bp.route("/profiles/<path:profile_id>")
@bp.response(200, ProfileSchema)
def get_profile(profile_id):
    """A profile (by profile id, user id or anonymous id): facts, current segments and history."""
    engine, site_id = get_engine(), g.api_site["id"]
    found = store.profile(engine, site_id, profile_id)
    if found is None:
        raise APIError(404, "unknown_profile", "No profile with that id.")
    with engine.connect() as conn:
        history = members.profile_history(conn, site_id, found["profile_id"], HISTORY_KEPT)
    keep = ("profile_id", "user_id", "email", "traits", "anonymous_ids", "segments", "recent_views")
    facts = {key: value for key, value in found.items() if key not in keep}
    return {**{key: found[key] for key in keep}, "facts": facts, "history": history}


@bp.route("/profiles/<path:profile_id>", methods=["DELETE"])
@bp.response(200, ErasureSchema)
def erase_profile(profile_id):
    """Erase a person: events, facts, memberships, history and pending webhooks of every linked id."""
    try:
        counts = privacy.erase_profile(get_engine(), g.api_site["id"], profile_id, collector_store.now_ms())
    except privacy.UnknownProfile:
        raise APIError(404, "unknown_profile", "No profile with that id.") from None
    except privacy.Busy as err:
        raise APIError(503, "busy", str(err), headers={"Retry-After": "5"}) from None
    return {"erased": counts}


@bp.route("/profiles/<path:profile_id>/export")
@bp.doc(responses={"200": {"description": "One stored row a line: {table, row}", "content": {"application/x-ndjson": {}}}})
def export_profile(profile_id):
    """Everything stored about a person (access request), as NDJSON."""
    records = privacy.profile_records(get_engine(), g.api_site["id"], profile_id)
    try:
        first = next(records)
    except privacy.UnknownProfile:
        raise APIError(404, "unknown_profile", "No profile with that id.") from None

    def lines():
        yield json.dumps(first, default=str) + "\n"
        for record in records:
            yield json.dumps(record, default=str) + "\n"

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = 'attachment; filename="profile.ndjson"'
    return response


@visitor_bp.route("/segments/me")
@visitor_bp.arguments(VisitorQuery, location="query")
@visitor_bp.response(200, VisitorSegmentsSchema)
def my_segments(args):
    """The segment names of one visitor, for on-site personalisation (write key; nothing else is shown).

    An anonymous id linked to a user id shows that user's segments only when the link is verified (PRIVACY.md)."""
    site = authenticate({})
    engine = get_engine()
    profile_id = store.resolve_profile_id(engine, site["id"], "a:" + args["anonymousId"], verified_links_only=True)
    if profile_id is None:
        return {"segments": []}
    with engine.connect() as conn:
        names = members.segments_of(conn, site["id"], [profile_id]).get(profile_id, [])
    return {"segments": names}


visitor_bp.before_request(reject_nul)
visitor_bp.after_request(cors_headers)


def asset(name):
    """The docs page's script, cached for a year: a new ReDoc comes under a new name."""
    if name != REDOC:
        raise APIError(404, "not_found", "No such file.")
    response = send_from_directory(STATIC, name, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# ReDoc's sidebar shows Redocly's logo from their CDN; the policy keeps the page from asking any other host.
DOCS_POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
               "style-src 'self' 'unsafe-inline'; font-src 'self' data:; worker-src 'self' blob:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def docs_policy(response):
    """The docs page may load from its own origin only."""
    if request.endpoint == "api-docs.openapi_redoc":
        response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


def init_app(app):
    """Register the API, its OpenAPI document at /api/v1/openapi.json and a docs page at /api/v1/docs."""
    app.config.setdefault("API_TITLE", "Cohortly")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_REDOC_PATH", "docs")
    app.config.setdefault("OPENAPI_REDOC_URL", f"{ASSETS}/{REDOC}")  # same origin: no third-party script
    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{"bearerAuth": []}]})
    from segmenter import webhook_api  # it imports this module's require_api_key

    app.teardown_request(close_connection)
    app.add_url_rule(f"{ASSETS}/<name>", "api_asset", asset)
    app.after_request(docs_policy)
    api = CohortlyApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("writeKey", {"type": "apiKey", "in": "query", "name": "writeKey"})
    api.register_blueprint(bp)
    api.register_blueprint(webhook_api.bp)
    api.register_blueprint(visitor_bp)
    app.extensions["cohortly_api"] = api
