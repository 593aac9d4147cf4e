"""Segmentation: rules over behaviour (`rules`), the scheduled rollup that folds events into facts and judges
members (`rollup`), the one read layer (`reads`) and policy (`policy`), privacy, webhooks, and the serving side:
the REST API and the dashboard (`serving`). Depends on `core`."""


def init_app(app):
    """The segment API (with its OpenAPI document and docs page) and the dashboard."""
    from segmenter.serving import api, dashboard

    api.init_app(app)
    app.register_blueprint(dashboard.bp)
