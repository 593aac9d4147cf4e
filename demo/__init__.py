"""The demo: a small shop with the snippet embedded, and synthetic visitors for it."""


def init_app(app):
    """The demo shop's pages, when the app runs as the demo (`DEMO_WRITE_KEY` is set)."""
    if app.config.get("DEMO_WRITE_KEY"):
        from demo.shop import bp

        app.register_blueprint(bp)
