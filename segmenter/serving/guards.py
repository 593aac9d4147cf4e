"""Checks every API request passes before its route runs: the API key, and no NUL in a path or query."""

import json
from typing import Any

from flask import request

from core import auth, sites
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


def json_body() -> Any:
    """The request's JSON body: 400 when it is not JSON, 422 when it nests past what the parser recurses into or
    holds a string that neither database can store (a NUL, a lone surrogate)."""
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except RecursionError:
        raise APIError(
            422, "invalid_request", "The JSON body is nested too deeply.", {"json": ["Nested too deeply."]}
        ) from None
    except ValueError:
        raise APIError(400, "invalid_json", "The body is not valid JSON.") from None
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not sites.storable(value):
            problem = "A string holds a NUL or a lone surrogate, which cannot be stored."
            raise APIError(422, "invalid_request", problem, {"json": [problem]})
    return body
