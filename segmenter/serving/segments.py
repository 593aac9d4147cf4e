"""/api/v1/segments: the segments, their members (pages and exports) and their changes feed (API key)."""

import time

from flask import Response, current_app, g, jsonify, stream_with_context
from flask_smorest import Blueprint

from core import times
from core.db import close_connection, connection, get_engine
from core.errors import APIError
from core.times import to_ms
from segmenter import policy, site_segments
from segmenter.exports import csv_lines, in_blocks, member_record, ndjson_lines
from segmenter.reads import catalog, members, preview
from segmenter.rules import definitions
from segmenter.rules.settings import load_settings
from segmenter.serving.guards import json_body, reject_nul, require_api_key
from segmenter.serving.schemas import (
    ChangePageSchema,
    ChangesQuery,
    ExportQuery,
    MemberPageSchema,
    MembersQuery,
    PreviewSchema,
    SegmentListSchema,
    SegmentSchema,
    SegmentVersionListSchema,
    SegmentVersionSchema,
)

bp = Blueprint("segments", __name__, url_prefix="/api/v1", description="Segments, members and changes (API key).")
bp.before_request(require_api_key)
bp.before_request(reject_nul)
#: A segment definition, as the grammar in the OpenAPI document's components describes it.
DEFINITION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentDefinition"}}},
}
PREVIEW_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "rule": {"$ref": "#/components/schemas/SegmentRule"},
                    "requires": {"$ref": "#/components/schemas/SegmentRule"},
                    "name": {"type": "string", "description": "An existing segment to compare with"},
                },
                "required": ["rule"],
            }
        }
    },
}


def _segment_or_404(name):
    if not catalog.segment_exists(connection(), g.api_site["id"], name):
        raise APIError(404, "unknown_segment", f"No segment named {name!r}.")


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


@bp.route("/segments", methods=["POST"])
@bp.doc(requestBody=DEFINITION_BODY)
@bp.response(201, SegmentVersionSchema)
def create_segment():
    """Define a segment: `{"name", "description", "rule", "requires"}` (the grammar: SegmentDefinition). Its
    members are judged at the next rollup, events stored before it counted."""
    try:
        return site_segments.create(get_engine(), g.api_site["id"], json_body(), "api", times.now_ms())
    except site_segments.SegmentExists as err:
        raise APIError(409, "segment_exists", f"A segment named {err} exists: PUT to change it.") from None
    except site_segments.TooManySegments as err:
        raise APIError(409, "too_many_segments", str(err)) from None
    except site_segments.InvalidDefinition as err:
        raise _invalid(err) from None


@bp.route("/segments/preview", methods=["POST"])
@bp.doc(requestBody=PREVIEW_BODY)
@bp.response(200, PreviewSchema)
def preview_segment():
    """What a rule would give now, before saving it: `{"rule", "requires"?, "name"?}` answers the size, a sample
    (under the site's policy) and, with the name of an existing segment, the enters and exits against it."""
    settings = load_settings(g.api_site["settings"])
    try:
        return preview.preview(get_engine(), g.api_site["id"], json_body(), settings, times.now_ms())
    except site_segments.InvalidDefinition as err:
        raise _invalid(err) from None
    except preview.Busy as err:
        raise APIError(503, "busy", str(err), headers={"Retry-After": "5"}) from None


@bp.route("/segments/<name>", methods=["PUT"])
@bp.doc(requestBody=DEFINITION_BODY)
@bp.response(200, SegmentVersionSchema)
def update_segment(name):
    """Replace a site-defined segment's rule: a new version. Everyone is judged again at the next rollup; enters
    and exits carry the reason `definition vN → vN+1`."""
    try:
        return site_segments.update(get_engine(), g.api_site["id"], name, json_body(), "api", times.now_ms())
    except site_segments.BuiltInSegment:
        raise _built_in(name) from None
    except site_segments.UnknownSegment:
        raise APIError(404, "unknown_segment", f"No site-defined segment named {name!r}.") from None
    except site_segments.InvalidDefinition as err:
        raise _invalid(err) from None


@bp.route("/segments/<name>", methods=["DELETE"])
@bp.response(200, SegmentVersionSchema)
def delete_segment(name):
    """Delete a site-defined segment. Its members exit at the next rollup; its versions and changes stay."""
    try:
        return site_segments.delete(get_engine(), g.api_site["id"], name, "api", times.now_ms())
    except site_segments.BuiltInSegment:
        raise _built_in(name) from None
    except site_segments.UnknownSegment:
        raise APIError(404, "unknown_segment", f"No site-defined segment named {name!r}.") from None
    except site_segments.InvalidDefinition as err:
        raise APIError(409, "segment_in_use", err.problems["/name"]) from None


@bp.route("/segments/<name>/versions")
@bp.response(200, SegmentVersionListSchema)
def segment_versions(name):
    """Every version of a site-defined segment, oldest first (deleted ones too)."""
    try:
        return {"versions": site_segments.history(connection(), g.api_site["id"], name)}
    except site_segments.UnknownSegment:
        raise APIError(404, "unknown_segment", f"No site-defined segment named {name!r}.") from None


def _invalid(err, status=422, code="invalid_segment"):
    return APIError(status, code, "The segment definition is not valid: see `fields` (JSON pointers).", err.problems)


def _built_in(name):
    return APIError(
        403, "built_in_segment", f"{name} is built in: change its thresholds with `cohortly sites configure`."
    )


def _segments():
    conn, site_id = connection(), g.api_site["id"]
    settings = load_settings(g.api_site["settings"])
    shown = catalog.describe_settings(settings)
    computed = members.last_computed(conn, site_id)
    age = None if computed is None else max(0, (int(time.time() * 1000) - computed) // 1000)
    stale_after = current_app.config["STALE_AFTER"]
    found = []
    for segment in catalog.describe_segments(conn, site_id, settings):
        if segment["kind"] == "built_in":
            definition, used = rule_definition(definitions.RULES_BY_NAME[segment["name"]], shown)
            extra = {}
        else:
            definition, used = {"rule": segment["rule"], "requires": segment["requires"]}, []
            extra = {"version": segment["version"]}
        found.append(
            {
                "name": segment["name"],
                "kind": segment["kind"],
                **extra,
                "description": segment["description"],
                "definition": definition,
                "thresholds": {name: shown[name] for name in used},
                "size": segment["members"],
                "min_size": segment["min_size"],
                "too_small": segment["too_small"],
                "last_computed_at": computed,
                "age_seconds": age,
                "stale": age is None or age > stale_after,
            }
        )
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
    size = catalog.count_members(connection(), g.api_site["id"], name, up_to=policy.sizes_needed(settings))
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
