"""The dashboard at /dashboard: segments and their size over time, the funnel, recent enters/exits,
bad rows and rollups. Server-rendered; signed in with the site's API key, which is exchanged for a server-side
session (segmenter/serving/sessions.py): the cookie holds a random token, never the key. Every form carries a
CSRF token."""

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from core import sites, times
from core.db import get_engine
from segmenter.reads import catalog, overview
from segmenter.rules.settings import load_settings
from segmenter.serving import charts, sessions
from segmenter.serving.schemas import iso

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")
COOKIE = "cohortly_session"
CSRF_COOKIE = "cohortly_csrf"  # the signed-out sign-in form's double-submit token
CSRF_FIELD = "csrf_token"
# The pages run no script and load nothing; nor may another site frame them (a framed Sign out button).
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FORGED = "The form was not sent from this dashboard page (or it expired). Reload the page and try again."


def _token():
    return request.cookies.get(COOKIE)


def _site():
    token = _token()
    return sessions.site_of(get_engine(), token, times.now_ms()) if token else None


def _set_cookie(response, name, value, max_age):
    # Path /dashboard: no other route reads them. Strict: no other site's page can send them along.
    response.set_cookie(
        name, value, max_age=max_age, path=bp.url_prefix, httponly=True, samesite="Strict", secure=request.is_secure
    )


def _login_page(error=None, status=200):
    """The sign-in form with a double-submit token in a cookie and in the form (the cookie's own, if it has
    one, so that two open sign-in tabs both work)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not sessions.well_formed(token):
        token = sessions.new_token()
    response = current_app.make_response((render_template("dashboard/login.html", error=error, csrf=token), status))
    _set_cookie(response, CSRF_COOKIE, token, 3600)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def security_headers(response):
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.app_template_filter("when")
def when(ms):
    """An epoch-ms time for people: `2026-11-30 21:04:05 UTC`."""
    return "—" if ms is None else iso(ms).replace("T", " ")[:19] + " UTC"


@bp.get("/")
def index():
    site = _site()
    if site is None:
        return _login_page()
    engine = get_engine()
    with engine.connect() as conn:
        history = overview.size_history(conn, site["id"])
        steps = overview.funnel(conn, site["id"])
        recent = overview.recent_changes(conn, site["id"], load_settings(site["settings"]))
        bad = overview.recent_bad_rows(conn, site["id"])
        runs = overview.recent_runs(conn, site["id"])
    segments = catalog.list_segments(engine, site["id"])
    for segment in segments:
        segment["chart"] = charts.sparkline(history.get(segment["name"], []))
    top = max((step["count"] for step in steps), default=0)
    for step in steps:
        step["chart"] = charts.bar(step["count"], top)
    response = current_app.make_response(
        render_template(
            "dashboard/index.html",
            site=site,
            segments=segments,
            funnel=steps,
            changes=recent,
            bad_rows=bad,
            runs=runs,
            csrf=sessions.csrf_token(_token()),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/login")
def login():
    """Exchange an API key for a session; the form must carry the token of its cookie."""
    if not sessions.same(request.cookies.get(CSRF_COOKIE), request.form.get(CSRF_FIELD)):
        return _login_page(FORGED, 403)
    key = request.form.get("api_key", "").strip()
    site = sites.find_site(get_engine(), api_key=key) if key else None
    if site is None:
        return _login_page("That is not an API key of any site.", 401)
    lifetime = int(current_app.config["DASHBOARD_SESSION_SECONDS"])
    token = sessions.start(get_engine(), site["id"], times.now_ms(), lifetime)
    response = redirect(url_for("dashboard.index"), 303)
    _set_cookie(response, COOKIE, token, lifetime)
    response.delete_cookie(CSRF_COOKIE, path=bp.url_prefix)
    return response


@bp.post("/logout")
def logout():
    """End the session on the server, then forget the cookie."""
    token = _token()
    if token and _site() is not None:
        if not sessions.same(sessions.csrf_token(token), request.form.get(CSRF_FIELD)):
            return render_template("dashboard/forbidden.html", message=FORGED), 403
        sessions.end(get_engine(), token)
    response = redirect(url_for("dashboard.index"), 303)
    response.delete_cookie(COOKIE, path=bp.url_prefix, httponly=True, samesite="Strict", secure=request.is_secure)
    return response
