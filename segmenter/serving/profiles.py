"""/api/v1/profiles: one person's profile, its erasure and its access export (API key)."""

import json

from flask import Response, g, stream_with_context
from flask_smorest import Blueprint

from core import times
from core.db import get_engine
from core.errors import APIError
from segmenter import privacy
from segmenter.reads import catalog, members
from segmenter.serving.guards import reject_nul, require_api_key
from segmenter.serving.schemas import ErasureSchema, ProfileSchema

bp = Blueprint("profiles", __name__, url_prefix="/api/v1", description="Profiles, erasure and access (API key).")
bp.before_request(require_api_key)
bp.before_request(reject_nul)
HISTORY_KEPT = 200


@bp.route("/profiles/<path:profile_id>")
@bp.response(200, ProfileSchema)
def get_profile(profile_id):
    """A profile (by profile id, user id or anonymous id): facts, current segments and history."""
    engine, site_id = get_engine(), g.api_site["id"]
    found = catalog.profile(engine, site_id, profile_id)
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
        counts = privacy.erase_profile(get_engine(), g.api_site["id"], profile_id, times.now_ms())
    except privacy.UnknownProfile:
        raise APIError(404, "unknown_profile", "No profile with that id.") from None
    except privacy.Busy as err:
        raise APIError(503, "busy", str(err), headers={"Retry-After": "5"}) from None
    return {"erased": counts}


@bp.route("/profiles/<path:profile_id>/export")
@bp.doc(
    responses={"200": {"description": "One stored row a line: {table, row}", "content": {"application/x-ndjson": {}}}}
)
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
