"""The dashboard at /dashboard: segments and their size over time, the funnel, recent enters/exits,
bad rows and rollups. Server-rendered; signed in with the site's API key (kept in an HttpOnly cookie)."""
from flask import Blueprint, redirect, render_template, request, url_for

from collector import store as collector_store
from collector.db import get_engine
from segmenter import charts, overview, store
from segmenter.api_schemas import iso
from segmenter.schemas import load_settings

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")
COOKIE = "cohortly_api_key"


def _site():
    key = request.cookies.get(COOKIE)
    return collector_store.find_site(get_engine(), api_key=key) if key else None


@bp.app_template_filter("when")
def when(ms):
    """An epoch-ms time for people: `2026-11-30 21:04:05 UTC`."""
    return "—" if ms is None else iso(ms).replace("T", " ")[:19] + " UTC"


@bp.get("/")
def index():
    site = _site()
    if site is None:
        return render_template("dashboard/login.html", error=None), 200
    engine = get_engine()
    with engine.connect() as conn:
        history = overview.size_history(conn, site["id"])
        steps = overview.funnel(conn, site["id"])
        recent = overview.recent_changes(conn, site["id"], load_settings(site["settings"]))
        bad = overview.recent_bad_rows(conn, site["id"])
        runs = overview.recent_runs(conn, site["id"])
    segments = store.list_segments(engine, site["id"])
    for segment in segments:
        segment["chart"] = charts.sparkline(history.get(segment["name"], []))
    top = max((step["count"] for step in steps), default=0)
    for step in steps:
        step["chart"] = charts.bar(step["count"], top)
    return render_template("dashboard/index.html", site=site, segments=segments, funnel=steps,
                           changes=recent, bad_rows=bad, runs=runs)


@bp.post("/login")
def login():
    key = request.form.get("api_key", "").strip()
    if not key or collector_store.find_site(get_engine(), api_key=key) is None:
        return render_template("dashboard/login.html", error="That is not an API key of any site."), 401
    response = redirect(url_for("dashboard.index"))
    response.set_cookie(COOKIE, key, httponly=True, samesite="Strict", secure=request.is_secure, max_age=8 * 3600)
    return response


@bp.post("/logout")
def logout():
    response = redirect(url_for("dashboard.index"))
    response.delete_cookie(COOKIE)
    return response
