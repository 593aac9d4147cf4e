"""Files holding the data or keys are created readable by their owner only."""

import json
import os
import stat

from flask import Flask
from sqlalchemy import text

from core import db
from core.db import make_engine
from demo.commands import demo_site


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_wal_are_private(tmp_path):
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert mode(path) == 0o600
        assert mode(f"{path}-wal") == 0o600
        assert mode(f"{path}-shm") == 0o600
    engine.dispose()


def test_the_default_instance_folder_is_private(tmp_path):
    instance = tmp_path / "instance"
    app = Flask("probe", instance_path=str(instance))
    app.config.update(DATABASE_URL=None, SQLITE_TIMEOUT=5.0)
    db.init_app(app)
    engine = app.extensions["cohortly_engine"]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert mode(instance) == 0o700
    assert mode(instance / "cohortly.db") == 0o600
    engine.dispose()


def test_the_demo_keys_file_is_private(engine, tmp_path):
    path = tmp_path / "keys" / "demo-site.json"
    keys = demo_site(engine, str(path), ["http://127.0.0.1:8000"], {})
    assert json.loads(path.read_text())["api_key"] == keys["api_key"]
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_a_world_readable_keys_file_is_made_private_when_rewritten(engine, tmp_path):
    path = tmp_path / "demo-site.json"
    path.write_text(json.dumps({"write_key": "wk_gone"}))
    os.chmod(path, 0o644)
    demo_site(engine, str(path), ["http://127.0.0.1:8000"], {})
    assert mode(path) == 0o600
