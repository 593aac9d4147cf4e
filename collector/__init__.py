"""Ingestion: the Segment-compatible tracking API and the tracker script. Messages are checked
(`schemas`, `messages`), verified (`identity`), enriched into rows (`enrich`) and stored (`store`) by the routes
of `tracking`; `snippet` serves the built tracker. Depends on `core` only."""


def init_app(app):
    """The tracking routes, then the tracker script (last: its neutral path must not shadow another route)."""
    from collector import snippet, tracking

    tracking.init_app(app)
    snippet.init_app(app)
