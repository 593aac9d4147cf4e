"""The one JSON error shape of every API response, and the handlers that produce it.

{"error": {"code": "invalid_payload", "message": "...", "fields": {...}}}
"""

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """An error answered to the client with `status` and the JSON error shape."""

    def __init__(self, status, code, message, fields=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A Flask response in the one error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(error=body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def unavailable(message: str = "The database is unavailable; retry later.") -> Response:
    """A 503 with Retry-After, for a storage outage."""
    retry_after = str(current_app.config["RETRY_AFTER"])
    return error_response(503, "unavailable", message, headers={"Retry-After": retry_after})


def _api_error(err):
    return error_response(err.status, err.code, err.message, err.fields, err.headers)


def http_error(err: HTTPException) -> Response:
    """A werkzeug HTTP error (404, 405, 413 ...) in the one shape."""
    code = (err.name or "error").lower().replace(" ", "_")
    if err.code == 413:
        code = "payload_too_large"
    return error_response(err.code or 500, code, err.description or err.name)


def _database_error(err):
    outage = isinstance(err, (OperationalError, InterfaceError)) or err.connection_invalidated
    if not outage:
        return _unexpected(err)
    current_app.logger.warning("database unavailable: %s", err.orig.__class__.__name__)
    return unavailable()


def _unexpected(err):
    current_app.logger.exception("unhandled error")
    return error_response(500, "internal_error", "An unexpected error occurred.")


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into the JSON shape."""
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)
