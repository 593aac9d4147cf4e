"""`cohortly demo`: the collector, scheduled rollups and the demo shop on one machine, optionally with
synthetic visitors, so that every segment fills within a minute."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import click
from marshmallow import ValidationError

from core import db, sites
from core.app import create_app
from demo.simulate import plan_visitors, send_visitors
from segmenter.reads.catalog import configure_site

GUNICORN_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core", "gunicorn_conf.py")


def demo_site(engine, path, origins, settings):
    """The demo site's keys, kept in the file `path` (the API key is shown only once)."""
    keys = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            keys = json.load(file)
        if sites.find_site(engine, write_key=keys["write_key"]) is None:
            keys = None
    if keys is None:
        name = "demo"
        while sites.find_site(engine, name=name):
            name = f"demo-{int(time.time())}"
        keys = sites.create_site(engine, name, origins)
        db.write_private(path, json.dumps(keys))
    sites.update_site_origins(engine, keys["site_id"], origins)
    configure_site(engine, keys["site_id"], settings)
    return keys


def wait_healthy(url, process, timeout=60):
    """Poll /healthz until the collector answers; fail if it exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException("The collector exited during start-up; see the output above.")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"The collector did not answer at {url} within {timeout} s.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--simulate",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Send this many synthetic visitors first (through the HTTP API, backdated).",
)
@click.option(
    "--rollup-every", default=10.0, show_default=True, type=click.FloatRange(min=0.5), help="Seconds between rollups."
)
@click.option(
    "--abandon-after",
    default="1m",
    show_default=True,
    metavar="DURATION",
    help="How long after a cart add or checkout start a visitor counts as an abandoner.",
)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False),
    help="Where the demo site's keys are kept (default: demo-site.json in the instance folder).",
)
def demo(host, port, simulate, rollup_every, abandon_after, keys_file):
    """Run the demo: collector, rollups every few seconds, a demo shop at /demo/ and the dashboard.

    Example: cohortly demo --simulate 500
    """
    app = create_app()
    engine = app.extensions["cohortly_engine"]
    url = f"http://{host}:{port}"
    db.upgrade(engine)
    origins = [url, f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    keys_file = keys_file or os.path.join(app.instance_path, "demo-site.json")
    settings = {"cart_abandon_after": abandon_after, "checkout_abandon_after": abandon_after}
    try:
        keys = demo_site(engine, keys_file, origins, settings)
    except ValidationError as err:
        raise click.ClickException(f"--abandon-after: {err.messages}") from None
    engine.dispose()
    env = dict(
        os.environ,
        COHORTLY_DATABASE_URL=app.config["DATABASE_URL"],
        COHORTLY_BIND=f"{host}:{port}",
        COHORTLY_WORKERS=os.environ.get("COHORTLY_WORKERS", "2"),
        COHORTLY_DEMO_WRITE_KEY=keys["write_key"],
    )
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "core.app:create_app()"], env=env)
    rollups = subprocess.Popen([sys.executable, "-m", "core.cli", "rollup", "--every", str(rollup_every)], env=env)
    children = (server, rollups)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait(timeout=30)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        wait_healthy(url, server)
        if simulate:
            now = int(time.time() * 1000)
            accepted = send_visitors(url, keys["write_key"], plan_visitors(simulate, now, url), now=now)
            click.echo(f"Sent {simulate} synthetic visitors ({accepted} events).")
        click.echo(
            f"\nCohortly demo is running.\n"
            f"  shop:       {url}/demo/\n"
            f"  dashboard:  {url}/dashboard   (sign in with the API key)\n"
            f"  API docs:   {url}/api/v1/docs\n"
            f"  write key:  {keys['write_key']}\n"
            f"  API key:    {keys['api_key']}\n"
            f"  segments:   curl -H 'Authorization: Bearer {keys['api_key']}' {url}/api/v1/segments\n"
            f"Rollups run every {rollup_every:g} s. Ctrl-C stops.\n"
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise click.ClickException("A demo process exited; see the output above.")
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def register(main):
    """Add `demo` to the `cohortly` group."""
    main.add_command(demo)
