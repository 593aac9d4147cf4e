"""The Flask app factory: settings, the database, errors, authentication and /healthz, then the domains.

The domains plug in by name (`DOMAINS`), each with an `init_app(app)`: core never imports them, they import
core. The collector comes last because its neutral snippet path must not shadow any other route.
"""

import importlib
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from core import auth, db, errors, health, settings

#: The packages that make up the app, in the order their routes are registered.
DOMAINS = ("segmenter", "demo", "collector")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app; settings come from `COHORTLY_*` variables or `test_config`."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(settings.defaults())
    if test_config is None:
        app.config.from_prefixed_env("COHORTLY")
    else:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_REQUEST_BYTES"]
    app.json.sort_keys = False
    if app.config["TRUSTED_PROXIES"]:
        proxies = int(
            app.config["TRUSTED_PROXIES"]
        )  # X-Forwarded-Proto too: the dashboard's cookies are Secure on https
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    db.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(health.bp)
    for name in DOMAINS:
        importlib.import_module(name).init_app(app)
    return app
