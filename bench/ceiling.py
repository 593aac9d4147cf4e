"""The ceiling the collector is measured against: Flask under the same gunicorn, parsing the same JSON, doing
nothing else. `gunicorn "bench.ceiling:create_app()"`.
"""

import json

from flask import Flask, jsonify, request


def create_app():
    """A Flask app whose /v1/batch parses the body and answers 200 like the collector does."""
    app = Flask(__name__)

    @app.post("/v1/batch")
    def batch():
        body = json.loads(request.get_data(cache=False).decode("utf-8"))
        return jsonify(success=True, accepted=len(body["batch"]), rejected=[])

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
