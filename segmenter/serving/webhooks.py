"""Webhook registration, delivery log and resync under /api/v1/webhooks (API key)."""

import json

from flask import current_app, g, request
from flask_smorest import Blueprint

from core import times
from core.db import connection, get_engine
from core.errors import APIError
from segmenter.reads import catalog
from segmenter.serving.guards import reject_nul, require_api_key
from segmenter.serving.schemas import (
    DeliveryListSchema,
    DeliveryQuery,
    ResyncResultSchema,
    ResyncSchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
)
from segmenter.webhooks import network, outbox

bp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Enter/exit notifications, signed with HMAC-SHA256 (API key).",
)
bp.before_request(require_api_key)
bp.before_request(reject_nul)
MAX_WEBHOOK_ID = 2**31 - 1


@bp.before_request
def reject_deep_json():
    """A body nested past what the JSON parser recurses into is invalid, not a 500."""
    if request.method != "POST":
        return
    try:
        json.loads(request.get_data(cache=True) or b"null")
    except RecursionError:
        raise APIError(
            422, "invalid_request", "The JSON body is nested too deeply.", {"json": ["Nested too deeply."]}
        ) from None
    except ValueError:
        pass  # not JSON: the arguments' parser answers that


def allowed_networks():
    """The app's WEBHOOK_ALLOW_NETWORKS as networks."""
    return network.allowed_networks(current_app.config.get("WEBHOOK_ALLOW_NETWORKS"))


def _or_404(call, *args):
    if not 0 < args[2] <= MAX_WEBHOOK_ID:  # (engine, site_id, hook_id, ...): past INTEGER, no such webhook
        raise APIError(404, "unknown_webhook", "No webhook with that id.")
    try:
        return call(*args)
    except outbox.UnknownWebhook:
        raise APIError(404, "unknown_webhook", "No webhook with that id.") from None


@bp.route("", methods=["POST"])
@bp.arguments(WebhookCreateSchema)
@bp.response(201, WebhookSchema)
def create(args):
    """Register a receiver for enters and exits; the answer holds the signing secret, once."""
    conn = connection()
    unknown = sorted(
        name for name in args["segments"] or () if not catalog.segment_exists(conn, g.api_site["id"], name)
    )
    if unknown:
        raise APIError(422, "invalid_request", "Unknown segments.", {"segments": unknown})
    try:
        network.check_url(args["url"], allowed_networks())
    except network.RefusedDestination:
        raise APIError(
            422,
            "invalid_request",
            "Webhooks may only reach public addresses.",
            {
                "url": [
                    "The host is or resolves to a loopback, private, link-local, multicast, reserved or unspecified "
                    "address (the instance's own network); COHORTLY_WEBHOOK_ALLOW_NETWORKS can allow such networks."
                ]
            },
        ) from None
    return outbox.create_webhook(
        get_engine(), g.api_site["id"], args["url"], args["segments"], args["changes"], args.get("secret")
    )


@bp.route("", methods=["GET"])
@bp.response(200, WebhookListSchema)
def list_all():
    """The site's webhooks with delivery counts."""
    return {"webhooks": outbox.list_webhooks(get_engine(), g.api_site["id"])}


@bp.route("/<int:hook_id>", methods=["GET"])
@bp.response(200, WebhookSchema)
def get(hook_id):
    """One webhook."""
    return _or_404(outbox.get_webhook, get_engine(), g.api_site["id"], hook_id)


@bp.route("/<int:hook_id>", methods=["DELETE"])
@bp.response(204)
def remove(hook_id):
    """Remove a webhook and its delivery log."""
    _or_404(outbox.delete_webhook, get_engine(), g.api_site["id"], hook_id)


@bp.route("/<int:hook_id>/deliveries", methods=["GET"])
@bp.arguments(DeliveryQuery, location="query")
@bp.response(200, DeliveryListSchema)
def deliveries(args, hook_id):
    """The delivery log, newest first."""
    rows = _or_404(
        outbox.delivery_log,
        get_engine(),
        g.api_site["id"],
        hook_id,
        args.get("status"),
        args.get("before"),
        args["limit"],
    )
    return {"deliveries": rows}


@bp.route("/<int:hook_id>/resync", methods=["POST"])
@bp.arguments(ResyncSchema)
@bp.response(202, ResyncResultSchema)
def resync(args, hook_id):
    """Send every change after `since` again (same idempotency keys) with the next delivery pass."""
    queued = _or_404(outbox.resync, get_engine(), g.api_site["id"], hook_id, args["since"], times.now_ms())
    return {"queued": queued}
