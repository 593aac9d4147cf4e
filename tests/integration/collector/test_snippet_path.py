"""COHORTLY_SNIPPET_PATH is checked when the app is made: a plain path that no other route answers."""

import pytest

from core.app import create_app
from core.cli import main
from core.settings import SettingError


@pytest.mark.parametrize(
    "path",
    [
        "assets/site.js",  # no leading slash: a traceback at start
        "/<x>",
        "/assets/<path:rest>",
        "/<int:n>.js",  # converters: 500s on every other path
        "/healthz",
        "/v1/track",
        "/v1/anything",
        "/api/v1/openapi.json",
        "/dashboard",
        "/static/c.js",  # shadowing
        "/a//b.js",
        "/../x.js",
        "/a b.js",
        "/x.js?v=1",
        "/",
        "/assets/",
    ],
)
def test_a_bad_snippet_path_is_refused_at_start(database_url, path):
    with pytest.raises(SettingError, match="COHORTLY_SNIPPET_PATH"):
        create_app({"DATABASE_URL": database_url, "SNIPPET_PATH": path})


@pytest.mark.parametrize("path", ["/assets/site.js", "/js/t-1.2_x~y.js", "/c.js"])
def test_a_plain_free_path_serves_the_tracker(database_url, path):
    app = create_app({"DATABASE_URL": database_url, "SNIPPET_PATH": path})
    client = app.test_client()
    response = client.get(path)
    assert response.status_code == 200
    assert response.data == client.get("/c.js").data
    assert client.get("/healthz").status_code == 200
    assert client.get("/assets/other.js").status_code == 404
    app.extensions["cohortly_engine"].dispose()


def test_the_cli_says_so_in_one_line(runner, monkeypatch):
    monkeypatch.setenv("COHORTLY_SNIPPET_PATH", "/healthz")
    result = runner.invoke(main, ["sites", "list"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: COHORTLY_SNIPPET_PATH /healthz is a path Cohortly answers already; choose another."
    ]
