"""Checks every API request passes before its route runs: the API key, and no NUL in a path or query."""

from flask import request

from core import auth
from core.errors import APIError


def require_api_key():
    """Every /api/v1 route needs `Authorization: Bearer API_KEY` (a write key never reads)."""
    if request.method != "OPTIONS":
        auth.require_api_key()


def reject_nul():
    """A NUL cannot be stored in, nor looked up from, PostgreSQL text: a path or query holding one is invalid."""
    arguments = [*(request.view_args or {}).items(), *request.args.items(multi=True)]
    bad = {
        name: ["Contains a NUL character."] for name, value in arguments if isinstance(value, str) and "\x00" in value
    }
    if bad:
        raise APIError(422, "invalid_request", "The request's arguments are not valid.", bad)
