"""The `cohortly` command line: sites, keys and the schema."""

import json

from sqlalchemy import inspect

from core import sites
from core.cli import main
from core.db import make_engine


def test_sites_create_json_prints_the_keys_once(runner, engine):
    result = runner.invoke(
        main,
        [
            "sites",
            "create",
            "shop",
            "--origin",
            "https://shop.example",
            "--origin",
            "https://www.shop.example",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"site_id", "write_key", "api_key"}
    site = sites.find_site(engine, api_key=created["api_key"])
    assert site["id"] == created["site_id"]
    assert site["origins"] == ["https://shop.example", "https://www.shop.example"]
    assert site["api_key_hash"] != created["api_key"]
    assert created["api_key"] not in json.dumps(sites.list_sites(engine))


def test_sites_create_plain_and_list(runner):
    created = runner.invoke(main, ["sites", "create", "blog"])
    assert created.exit_code == 0
    assert "write_key:" in created.output and "api_key:" in created.output
    listed = runner.invoke(main, ["sites", "list"])
    assert listed.exit_code == 0
    assert "\tblog\twk_" in listed.output
    assert "sk_" not in listed.output


def test_sites_list_json(runner):
    runner.invoke(main, ["sites", "create", "a", "--origin", "https://a.example"])
    rows = [json.loads(line) for line in runner.invoke(main, ["sites", "list", "--json"]).output.splitlines()]
    assert [(row["name"], row["origins"]) for row in rows] == [("a", ["https://a.example"])]


def test_duplicate_site_is_a_clear_error(runner):
    runner.invoke(main, ["sites", "create", "shop"])
    result = runner.invoke(main, ["sites", "create", "shop"])
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert "Traceback" not in result.output


def test_unknown_site_is_a_clear_error(runner):
    result = runner.invoke(main, ["bad-rows", "nope"])
    assert result.exit_code == 1
    assert "No site named 'nope'" in result.output


def test_db_upgrade_on_an_empty_sqlite_database(tmp_path, monkeypatch):
    from click.testing import CliRunner

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("COHORTLY_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    assert {"sites", "events", "bad_rows", "alembic_version"} <= set(inspect(engine).get_table_names())
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0  # again: nothing to do
    engine.dispose()
