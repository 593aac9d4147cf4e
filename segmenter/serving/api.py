"""The REST API: flask-smorest's Api in Cohortly's one error shape, its resources (`segments`, `profiles`,
`webhooks` under /api/v1 with the API key; `visitor` at /v1/segments/me with the write key), and the OpenAPI
document with its docs page."""

import glob
import os

from flask import request, send_from_directory
from flask_smorest import Api

from core.errors import APIError, error_response, http_error
from segmenter.rules import grammar
from segmenter.serving import profiles, segments, visitor, webhooks

STATIC = os.path.join(os.path.dirname(__file__), "static")
# ReDoc for /api/v1/docs, vendored by scripts/vendor-redoc; the version in its name makes the URL immutable.
REDOC = os.path.basename(max(glob.glob(os.path.join(STATIC, "redoc-*.standalone.js"))))
ASSETS = "/api/v1/assets"


class CohortlyApi(Api):
    """flask-smorest's Api answering every HTTP error in Cohortly's one error shape."""

    def handle_http_exception(self, error):
        messages = (getattr(error, "data", None) or {}).get("messages")
        if messages is not None:  # webargs: invalid query or body
            fields = messages.get("query") or messages.get("json") or messages
            return error_response(422, "invalid_request", "The request's arguments are not valid.", fields)
        return http_error(error)


def asset(name):
    """The docs page's script, cached for a year: a new ReDoc comes under a new name."""
    if name != REDOC:
        raise APIError(404, "not_found", "No such file.")
    response = send_from_directory(STATIC, name, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# ReDoc's sidebar shows Redocly's logo from their CDN; the policy keeps the page from asking any other host.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


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
    app.add_url_rule(f"{ASSETS}/<name>", "api_asset", asset)
    app.after_request(docs_policy)
    api = CohortlyApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("writeKey", {"type": "apiKey", "in": "query", "name": "writeKey"})
    for name, schema in grammar.openapi_components().items():  # the grammar of site-defined segments
        api.spec.components.schema(name, schema)
    for resource in (segments, profiles, webhooks, visitor):
        api.register_blueprint(resource.bp)
    app.extensions["cohortly_api"] = api
