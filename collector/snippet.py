"""Serves the built tracker at `/c.js` and at the neutral path `SNIPPET_PATH` (for first-party proxying)."""
import hashlib
import os
from functools import lru_cache

from flask import Blueprint, request

BUILD = os.path.join(os.path.dirname(__file__), "static", "c.js")
bp = Blueprint("snippet", __name__)


@lru_cache(maxsize=1)
def _snippet():
    with open(BUILD, "rb") as file:
        body = file.read()
    return body, hashlib.sha256(body).hexdigest()[:16]


def serve_snippet():
    body, etag = _snippet()
    if request.if_none_match.contains(etag):
        return "", 304, {"ETag": f'"{etag}"'}
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=3600",
        "ETag": f'"{etag}"',
        "Access-Control-Allow-Origin": "*",
    }
    return body, 200, headers


bp.add_url_rule("/c.js", "c_js", serve_snippet)


def init_app(app):
    """Register `/c.js`, and the configured neutral path if there is one."""
    app.register_blueprint(bp)
    path = app.config.get("SNIPPET_PATH")
    if path and path != "/c.js":
        app.add_url_rule(path, "snippet_neutral", serve_snippet)
