"""Serves the built tracker at `/c.js` and at the neutral path `SNIPPET_PATH` (for first-party proxying)."""
import os

from flask import Blueprint, send_from_directory

STATIC = os.path.join(os.path.dirname(__file__), "static")
bp = Blueprint("snippet", __name__)


def serve_snippet():
    response = send_from_directory(STATIC, "c.js", mimetype="text/javascript", max_age=3600)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


bp.add_url_rule("/c.js", "c_js", serve_snippet)


def init_app(app):
    """Register `/c.js`, and the configured neutral path if there is one."""
    app.register_blueprint(bp)
    path = app.config.get("SNIPPET_PATH")
    if path and path != "/c.js":
        app.add_url_rule(path, "snippet_neutral", serve_snippet)
