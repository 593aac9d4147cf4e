"""`GET /healthz`: 200 when the database answers, 503 otherwise."""

from flask import Blueprint, Response, jsonify

from core import sites
from core.db import get_engine

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    sites.ping(get_engine())
    return jsonify(status="ok")
