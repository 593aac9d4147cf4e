"""Serves the built tracker at `/c.js` and at the neutral path `SNIPPET_PATH` (for first-party proxying)."""

import hashlib
import os
import re
from functools import lru_cache

from flask import Blueprint, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from core.settings import SettingError

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


#: A plain URL path: segments of letters, digits and `-._~`, no converters (`<...>`), no `//`, `.` or `..`.
PLAIN_PATH = re.compile(r"(/[A-Za-z0-9\-_~][A-Za-z0-9\-._~]*)+")


def init_app(app):
    """Register `/c.js`, and the configured neutral path if there is one (call after every other route)."""
    app.register_blueprint(bp)
    path = app.config.get("SNIPPET_PATH")
    if path and path != "/c.js":
        check_path(app, path)
        app.add_url_rule(path, "snippet_neutral", serve_snippet)


def check_path(app, path):
    """SettingError unless `path` is a plain absolute path that no route of `app` answers yet."""
    if not isinstance(path, str) or not PLAIN_PATH.fullmatch(path):
        raise SettingError(
            f"COHORTLY_SNIPPET_PATH must be a plain path such as /assets/site.js (a leading /, "
            f"letters, digits and -._~ between slashes), not {path!r}."
        )
    try:
        app.url_map.bind("localhost").match(path, method="GET")
    except NotFound:
        return
    except (MethodNotAllowed, RequestRedirect):  # a route answers the path with other methods, or redirects it
        pass
    raise SettingError(f"COHORTLY_SNIPPET_PATH {path} is a path Cohortly answers already; choose another.")
