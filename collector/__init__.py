"""Cohortly's collector: the Flask app factory."""
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from collector import config, db, errors, health, snippet, tracking
from segmenter import api as segment_api
from segmenter import dashboard


def create_app(test_config=None):
    """Create the collector app; settings come from `COHORTLY_*` variables or `test_config`."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.defaults())
    if test_config is None:
        app.config.from_prefixed_env("COHORTLY")
    else:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_REQUEST_BYTES"]
    app.json.sort_keys = False
    if app.config["TRUSTED_PROXIES"]:
        proxies = int(app.config["TRUSTED_PROXIES"])  # X-Forwarded-Proto too: the dashboard's cookies are Secure on https
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    db.init_app(app)
    errors.init_app(app)
    tracking.init_app(app)
    app.register_blueprint(health.bp)
    segment_api.init_app(app)
    app.register_blueprint(dashboard.bp)
    if app.config.get("DEMO_WRITE_KEY"):
        from demo.shop import bp as demo_shop

        app.register_blueprint(demo_shop)
    snippet.init_app(app)  # last: it refuses a SNIPPET_PATH that another route answers
    return app
