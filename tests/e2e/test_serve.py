"""`cohortly serve` and `gunicorn wsgi:app` start a real server; serve migrates an empty database."""
import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.live import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e


def healthy(url, process):
    assert process.poll() is None, "the server exited"
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("command", [
    lambda port: [os.path.join(os.path.dirname(sys.executable), "cohortly"), "serve", "--port", str(port), "--workers", "1"],
    lambda port: [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
], ids=["cohortly-serve", "gunicorn-wsgi"])
def test_server_starts_and_answers(command, tmp_path, database_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = dict(os.environ, COHORTLY_DATABASE_URL=fresh if "serve" in command(port) else database_url)
    process = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: healthy(url, process), timeout=30, message="the server")
        answer = requests.post(url + "/v1/batch", json={"batch": []}, auth=("wk_unknown", ""), timeout=5)
        assert answer.status_code == 401  # tables exist: the key was looked up
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
