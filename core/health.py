"""`GET /healthz`: 200 when the database answers, 503 otherwise."""
from flask import Blueprint, jsonify

from core.db import get_engine
from core import sites

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    sites.ping(get_engine())
    return jsonify(status="ok")
