"""Webhooks: queue each enter/exit for the receivers that want it, deliver signed, retry with backoff.

Run after each rollup has committed (`deliver(engine, now)`); a delivery problem is recorded as a short
error class, never raised. A pass is bounded by wall-clock time (PASS_BUDGET_SECONDS, each delivery at
most DELIVERY_SECONDS), webhooks take turns so one slow receiver cannot starve the others, and a lease
per webhook keeps two concurrent passes from sending the same change. Per webhook, changes go out in
change order; the first failure backs the whole webhook off. `{webhook id}-{change id}` is the
idempotency key: a resync or a retry sends the same key again. Network rules: webhook_http.
"""

import functools
import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, insert, literal, or_, select, update

from core import schema, times
from core.db import write_engine
from core.sql import insert_ignoring_duplicates
from segmenter import policy
from segmenter.reads import catalog, members
from segmenter.serving.schemas import iso, iso_times
from segmenter.webhooks import network

webhooks = schema.Webhook.__table__
deliveries = schema.WebhookDelivery.__table__
changes = schema.MembershipChange.__table__
facts = schema.ProfileFact.__table__
CHANGES = ("enter", "exit")
STATUSES = ("pending", "delivered", "failed", "skipped")
MAX_ATTEMPTS = 12
FIRST_RETRY_MS = 10_000
LONGEST_RETRY_MS = 3_600_000
DELIVERY_SECONDS = 5  # one whole delivery: DNS, connect, TLS, request, status and headers
MIN_DELIVERY_SECONDS = 1  # a fair share of a pass is never cut below this
PASS_BUDGET_SECONDS = 20  # a pass returns within this (plus its own database work)
LEASE_SLACK_SECONDS = 30  # a lease outlives its pass by this, then a crashed pass's webhooks are free
BATCH = 200
USER_AGENT = "Cohortly-Webhooks/1"


class UnknownWebhook(LookupError):
    """No webhook with that id on this site."""


# --- pure ------------------------------------------------------------------------------------------


def idempotency_key(webhook_id, change_id):
    """The key a receiver dedupes on: the same for every attempt and resync of one change."""
    return f"{webhook_id}-{change_id}"


def sign(secret, timestamp, body):
    """The signature header value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret, header, body, now_seconds, tolerance_seconds=300):
    """True when `header` signs `body` with `secret` and is recent (what a receiver does)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now_seconds - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def retry_delay(attempts, rand=random.random):
    """Milliseconds to wait after the `attempts`-th failure: doubling from 10 s, at most 1 h, ±20 % jitter."""
    base = min(FIRST_RETRY_MS * 2 ** (attempts - 1), LONGEST_RETRY_MS)
    return int(base * (0.8 + 0.4 * rand()))


def payload(webhook_id, change, person):
    """The JSON body of one delivery."""
    return {
        "idempotency_key": idempotency_key(webhook_id, change["id"]),
        "webhook_id": webhook_id,
        "change_id": change["id"],
        "segment": change["segment"],
        "change": change["change"],
        "profile_id": change["profile_id"],
        "user_id": person.get("user_id"),
        "email": person.get("email"),
        "traits": person.get("traits"),
        "at": iso(change["at"]),
        "detected_at": iso(change["detected_at"]),
        "reason": change["reason"],
        "context": iso_times(change["context"]),
    }


# --- registration ----------------------------------------------------------------------------------


def create_webhook(engine, site_id, url, segments=None, changes_wanted=CHANGES, secret=None):
    """Register a receiver; it gets the changes made from now on. Returns it with its secret."""
    secret = secret or "whsec_" + secrets.token_urlsafe(24)
    with write_engine(engine).begin() as conn:
        cursor = conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)).where(changes.c.site_id == site_id))
        hook_id = conn.execute(
            insert(webhooks).values(
                site_id=site_id,
                url=url,
                segments=list(segments) if segments else None,
                changes=list(changes_wanted),
                secret=secret,
                cursor=cursor,
                created_at=times.now_ms(),
            )
        ).inserted_primary_key[0]
    return {**get_webhook(engine, site_id, hook_id), "secret": secret}


def list_webhooks(engine, site_id):
    """The site's webhooks with their delivery counts (never the secret)."""
    with engine.connect() as conn:
        rows = (
            conn.execute(select(webhooks).where(webhooks.c.site_id == site_id).order_by(webhooks.c.id)).mappings().all()
        )
        counts = {}
        for hook_id, status, count in conn.execute(
            select(deliveries.c.webhook_id, deliveries.c.status, func.count())
            .where(deliveries.c.webhook_id.in_([row["id"] for row in rows]))
            .group_by(deliveries.c.webhook_id, deliveries.c.status)
        ):
            counts.setdefault(hook_id, {})[status] = count
    return [_public(row, counts.get(row["id"], {})) for row in rows]


def get_webhook(engine, site_id, hook_id):
    """One webhook of the site (never the secret); UnknownWebhook if none."""
    for hook in list_webhooks(engine, site_id):
        if hook["id"] == hook_id:
            return hook
    raise UnknownWebhook(hook_id)


def delete_webhook(engine, site_id, hook_id):
    """Remove a webhook and its delivery log."""
    with write_engine(engine).begin() as conn:
        found = conn.execute(delete(webhooks).where(webhooks.c.site_id == site_id, webhooks.c.id == hook_id)).rowcount
    if not found:
        raise UnknownWebhook(hook_id)


def _public(row, counts):
    return {
        "id": row["id"],
        "url": row["url"],
        "segments": row["segments"],
        "changes": row["changes"],
        "cursor": row["cursor"],
        "created_at": row["created_at"],
        "deliveries": {status: counts.get(status, 0) for status in STATUSES},
    }


def delivery_log(engine, site_id, hook_id, status=None, before=None, limit=100):
    """A webhook's deliveries, newest first (`before`: a delivery id cursor)."""
    get_webhook(engine, site_id, hook_id)
    query = (
        select(deliveries, changes.c.segment, changes.c.change, changes.c.profile_id)
        .join(changes, changes.c.id == deliveries.c.change_id)
        .where(deliveries.c.webhook_id == hook_id)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(deliveries.c.status == status)
    if before:
        query = query.where(deliveries.c.id < before)
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    for row in rows:
        row["idempotency_key"] = idempotency_key(hook_id, row["change_id"])
    return rows


def resync(engine, site_id, hook_id, since, now):
    """Send again every matching change after change id `since` with the next pass (same idempotency keys).

    Returns how many deliveries were queued.
    """
    get_webhook(engine, site_id, hook_id)
    with write_engine(engine).begin() as conn:
        hook = conn.execute(select(webhooks).where(webhooks.c.id == hook_id)).mappings().one()
        wanted = _wanted(hook, since, hook["cursor"])
        replayed = conn.execute(
            update(deliveries)
            .where(deliveries.c.webhook_id == hook_id, deliveries.c.change_id.in_(select(wanted.c.id)))
            .values(status="pending", attempts=0, next_attempt_at=0, last_error=None)
        ).rowcount
        replayed += _queue(conn, hook, since, hook["cursor"], now, due_at=0)
    return replayed


# --- queueing and delivery -------------------------------------------------------------------------


def _wanted(hook, above, up_to):
    """The site's change ids in (above, up_to] this webhook wants."""
    query = select(changes.c.id).where(
        changes.c.site_id == hook["site_id"],
        changes.c.id > above,
        changes.c.id <= up_to,
        changes.c.change.in_(hook["changes"]),
    )
    if hook["segments"]:
        query = query.where(changes.c.segment.in_(hook["segments"]))
    return query.subquery()


def _queue(conn, hook, above, up_to, now, due_at=None):
    """Insert deliveries (set-based) for the wanted changes in (above, up_to]; existing ones stay."""
    wanted = _wanted(hook, above, up_to)
    due_at = now if due_at is None else due_at
    rows = select(
        literal(hook["id"]),
        wanted.c.id,
        literal("pending"),
        literal(0),
        literal(due_at),
        literal(now),
    ).where(wanted.c.id.is_not(None))  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    stmt = insert_ignoring_duplicates(conn, deliveries, ["webhook_id", "change_id"]).from_select(
        ["webhook_id", "change_id", "status", "attempts", "next_attempt_at", "created_at"], rows
    )
    # Counted by RETURNING: psycopg reports no rowcount for this statement.
    return len(conn.execute(stmt.returning(deliveries.c.id)).all())


def queue_changes(engine, now):
    """Queue the changes made since each webhook's cursor; returns how many deliveries were queued."""
    queued = 0
    with write_engine(engine).begin() as conn:
        hooks = conn.execute(select(webhooks)).mappings().all()
        for hook in hooks:
            newest = conn.scalar(select(func.max(changes.c.id)).where(changes.c.site_id == hook["site_id"]))
            if newest is None or newest <= hook["cursor"]:
                continue
            queued += _queue(conn, hook, hook["cursor"], newest, now)
            conn.execute(update(webhooks).where(webhooks.c.id == hook["id"]).values(cursor=newest))
    return queued


@dataclass
class DeliveryPass:
    """What one `deliver` call did."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: list = field(default_factory=list)
    busy: list = field(default_factory=list)  # webhooks another pass holds


def deliver(engine, now, allowed=(), send=None, budget_seconds=PASS_BUDGET_SECONDS, clock=time.monotonic):
    """Queue new changes, then send what is due, in change order per webhook, within `budget_seconds`.

    Webhooks take turns (round-robin, one delivery each per round), and each delivery gets at most
    DELIVERY_SECONDS and its fair part of what is left of the pass, so slow receivers cannot use up
    the other sites' time; a failure backs its webhook off until its retry. A pass leases each
    webhook before its first POST (committed first), so concurrent passes never send a change twice.
    `now` (epoch ms) schedules retries, so backfills and tests control time; the wall clock bounds
    the pass. `allowed`: networks webhooks may reach though not public (network.allowed_networks).
    `send(url, body, headers, timeout)` -> (status, error class) replaces the HTTP POST in tests.
    """
    if send is None:
        send = functools.partial(network.post, allowed=allowed)
    result = DeliveryPass(queued=queue_changes(engine, now))
    deadline = clock() + budget_seconds
    token = secrets.token_hex(8)
    held = []
    try:
        turn = _hooks_due(engine, now)
        while turn and clock() < deadline:
            again = []
            for position, hook in enumerate(turn):
                left = deadline - clock()
                if left <= 0:
                    break
                if hook["id"] not in held:
                    if not _claim(engine, hook["id"], token, left):
                        result.busy.append(hook["id"])
                        continue
                    held.append(hook["id"])
                fair = max(MIN_DELIVERY_SECONDS, left / (len(turn) - position))
                if _deliver_next(engine, hook, now, send, min(DELIVERY_SECONDS, fair, left), result):
                    again.append(hook)
            turn = again
    finally:
        _release(engine, held, token)
    return result


def _hooks_due(engine, now):
    """The webhooks with a due delivery, the longest-waiting first (so a pass cut short serves the
    others first next time), with their site's settings."""
    with engine.connect() as conn:
        waiting = (
            select(deliveries.c.webhook_id, func.min(deliveries.c.next_attempt_at).label("due"))
            .where(deliveries.c.status == "pending")
            .group_by(deliveries.c.webhook_id)
            .having(func.min(deliveries.c.next_attempt_at) <= now)
            .subquery()
        )
        rows = (
            conn.execute(
                select(webhooks)
                .join(waiting, waiting.c.webhook_id == webhooks.c.id)
                .order_by(waiting.c.due, webhooks.c.id)
            )
            .mappings()
            .all()
        )
    settings = {site_id: catalog.site_settings(engine, site_id) for site_id in {row["site_id"] for row in rows}}
    sizes = {
        site_id: members.size_counter(engine, site_id, site_settings) for site_id, site_settings in settings.items()
    }
    return [{**row, "settings": settings[row["site_id"]], "size": sizes[row["site_id"]]} for row in rows]


def _claim(engine, hook_id, token, seconds):
    """Lease a webhook for this pass (committed before any POST); False when another pass holds it."""
    wall = int(time.time() * 1000)
    with write_engine(engine).begin() as conn:
        return (
            conn.execute(
                update(webhooks)
                .where(
                    webhooks.c.id == hook_id, or_(webhooks.c.claimed_until.is_(None), webhooks.c.claimed_until < wall)
                )
                .values(claimed_by=token, claimed_until=wall + int((seconds + LEASE_SLACK_SECONDS) * 1000))
            ).rowcount
            == 1
        )


def _release(engine, hook_ids, token):
    if not hook_ids:
        return
    with write_engine(engine).begin() as conn:
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id.in_(hook_ids), webhooks.c.claimed_by == token)
            .values(claimed_by=None, claimed_until=None)
        )


def _deliver_next(engine, hook, now, send, timeout, result):
    """Send the webhook's next due change; True when it may send another in this pass."""
    with engine.connect() as conn:
        due = _due(conn, hook["id"], limit=1)
    if not due:
        return False
    item = due[0]
    if item["next_attempt_at"] > now:
        result.deferred.append(hook["id"])
        return False
    why = policy.withheld(hook["settings"], hook["size"](item["segment"]), item["traits"])
    if why:
        _skip(engine, item, why)
        result.skipped += 1
        return True
    body = json.dumps(payload(hook["id"], item, item), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": idempotency_key(hook["id"], item["change_id"]),
        "X-Cohortly-Signature": sign(hook["secret"], now // 1000, body),
        "X-Cohortly-Attempt": str(item["attempts"] + 1),
    }
    status, error = send(hook["url"], body, headers, timeout)
    ok = status is not None and 200 <= status < 300
    _record(engine, item, ok, status, None if ok else (error or f"http_{status}"), now)
    if ok:
        result.delivered += 1
    else:
        result.failed += 1  # and keep this webhook's order: it backs off before its later changes
    return ok


def _due(conn, hook_id, limit=BATCH):
    query = (
        select(
            deliveries.c.id.label("delivery_id"),
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.change_id,
            changes.c.id,
            changes.c.segment,
            changes.c.change,
            changes.c.profile_id,
            changes.c.at,
            changes.c.detected_at,
            changes.c.reason,
            changes.c.context,
            facts.c.user_id,
            facts.c.email,
            facts.c.traits,
        )
        .join(changes, changes.c.id == deliveries.c.change_id)
        .outerjoin(facts, and_(facts.c.site_id == changes.c.site_id, facts.c.profile_id == changes.c.profile_id))
        .where(deliveries.c.webhook_id == hook_id, deliveries.c.status == "pending")
        .order_by(deliveries.c.change_id)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _skip(engine, item, why):
    with write_engine(engine).begin() as conn:
        conn.execute(
            update(deliveries).where(deliveries.c.id == item["delivery_id"]).values(status="skipped", last_error=why)
        )


def _record(engine, item, ok, status, error, now):
    attempts = item["attempts"] + 1
    if ok:
        values = {"status": "delivered", "delivered_at": now, "last_error": None}
    elif attempts >= MAX_ATTEMPTS:
        values = {"status": "failed", "last_error": error}
    else:
        values = {"next_attempt_at": now + retry_delay(attempts), "last_error": error}
    with write_engine(engine).begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == item["delivery_id"])
            .values(attempts=attempts, last_status=status, **values)
        )
        if not ok:
            # The webhook's later changes wait behind this one.
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.webhook_id
                    == select(deliveries.c.webhook_id).where(deliveries.c.id == item["delivery_id"]).scalar_subquery(),
                    deliveries.c.status == "pending",
                    deliveries.c.id != item["delivery_id"],
                    deliveries.c.next_attempt_at < values.get("next_attempt_at", now),
                )
                .values(next_attempt_at=values.get("next_attempt_at", now))
            )
