"""What the dashboard shows, read in a few set-based queries: size history, funnel, recent activity."""

from sqlalchemy import func, select

from core import schema
from core.schema import BadRow
from segmenter.reads import members

facts = schema.ProfileFact.__table__
runs = schema.RollupRun.__table__
changes = schema.MembershipChange.__table__
bad_rows = BadRow.__table__


def size_history(conn, site_id, limit=60):
    """{segment: [(time, members), ...]} from the newest finished rollups, oldest first."""
    query = (
        select(runs.c.finished_at, runs.c.segments)
        .where(runs.c.site_id == site_id, runs.c.status == "done", runs.c.segments.is_not(None))
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    history = {}
    for finished_at, segments in reversed(conn.execute(query).all()):
        for name, figures in segments.items():
            history.setdefault(name, []).append((finished_at, figures["members"]))
    return history


def funnel(conn, site_id):
    """Profiles that viewed a product, carted, started a checkout and ordered (each step counts on its own)."""
    row = conn.execute(
        select(
            func.count().filter(facts.c.product_views > 0),
            func.count().filter(facts.c.last_cart_add_at.is_not(None)),
            func.count().filter(facts.c.last_checkout_at.is_not(None)),
            func.count().filter(facts.c.order_count > 0),
        ).where(facts.c.site_id == site_id)
    ).one()
    steps = list(zip(("Viewed a product", "Added to cart", "Started checkout", "Ordered"), row, strict=True))
    funnel_steps = []
    for index, (label, count) in enumerate(steps):
        previous = steps[index - 1][1] if index else None
        drop = None if not previous else round(100 * (previous - count) / previous)
        funnel_steps.append({"label": label, "count": count, "drop_percent": drop})
    return funnel_steps


def recent_changes(conn, site_id, settings, limit=15, scan=1000):
    """The newest enters and exits the site's policy lets out (`segmenter.policy`), looked for among the newest
    `scan` changes."""
    shown, before, scanned = [], None, 0
    while len(shown) < limit and scanned < scan:
        query = select(changes).where(changes.c.site_id == site_id).order_by(changes.c.id.desc()).limit(100)
        if before is not None:
            query = query.where(changes.c.id < before)
        page = [dict(row) for row in conn.execute(query).mappings()]
        if not page:
            break
        shown += members.shown_changes(conn, site_id, settings, page)
        before, scanned = page[-1]["id"], scanned + len(page)
    return shown[:limit]


def recent_bad_rows(conn, site_id, limit=10):
    """The newest rejected messages."""
    query = select(bad_rows).where(bad_rows.c.site_id == site_id).order_by(bad_rows.c.id.desc()).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def recent_runs(conn, site_id, limit=10):
    """The newest rollups of the site."""
    query = select(runs).where(runs.c.site_id == site_id).order_by(runs.c.id.desc()).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]
