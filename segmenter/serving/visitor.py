"""/v1/segments/me: a visitor's own segment names, for on-site personalisation (write key)."""

from flask_smorest import Blueprint

from core.auth import authenticate, cors_headers
from core.db import get_engine
from segmenter.reads import catalog, members
from segmenter.serving.guards import reject_nul
from segmenter.serving.schemas import VisitorQuery, VisitorSegmentsSchema

bp = Blueprint("visitor", __name__, url_prefix="/v1", description="A visitor's own segments (write key).")
bp.before_request(reject_nul)
bp.after_request(cors_headers)


@bp.route("/segments/me")
@bp.arguments(VisitorQuery, location="query")
@bp.response(200, VisitorSegmentsSchema)
def my_segments(args):
    """The segment names of one visitor, for on-site personalisation (write key; nothing else is shown).

    An anonymous id linked to a user id shows that user's segments only when the link is verified (PRIVACY.md)."""
    site = authenticate({})
    engine = get_engine()
    profile_id = catalog.resolve_profile_id(engine, site["id"], "a:" + args["anonymousId"], verified_links_only=True)
    if profile_id is None:
        return {"segments": []}
    with engine.connect() as conn:
        names = members.segments_of(conn, site["id"], [profile_id]).get(profile_id, [])
    return {"segments": names}
