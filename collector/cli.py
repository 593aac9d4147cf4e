"""The `cohortly` command line: a thin shell over the library."""
import json
import os
import sys

import click

from collector import create_app, db, store
from collector.config import SettingError


def _engine():
    """The configured engine, disposed when the command ends."""
    engine = create_app().extensions["cohortly_engine"]
    click.get_current_context().call_on_close(engine.dispose)
    return engine


class _Group(click.Group):
    """Turns a bad setting into one line and exit code 1, for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group)
def main():
    """Cohortly: self-hosted behavioural segmentation."""


@main.group("db")
def db_group():
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade():
    """Apply the schema migrations (safe to run again)."""
    db.upgrade(_engine())
    click.echo("Database is up to date.")


@main.group()
def sites():
    """Sites and their keys."""


@sites.command("create")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, help="An origin allowed to send from browsers, e.g. https://shop.example (repeatable; * allows any).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites_create(name, origins, as_json):
    """Create a site and print its id, write key and API key (shown only once).

    Example: cohortly sites create shop --origin https://shop.example
    """
    engine = _engine()
    _ensure_schema(engine)
    try:
        site = store.create_site(engine, name, origins)
    except store.SiteExists as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps({key: site[key] for key in ("site_id", "write_key", "api_key")}))
        return
    click.echo(f"site_id:   {site['site_id']}\nwrite_key: {site['write_key']}\napi_key:   {site['api_key']}")
    click.echo("Keep the API key secret: it is stored hashed and cannot be shown again.", err=True)


@sites.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def sites_list(as_json):
    """List the sites with their write keys and origins."""
    engine = _engine()
    _ensure_schema(engine)
    for site in store.list_sites(engine):
        if as_json:
            click.echo(json.dumps(site))
        else:
            click.echo(f"{site['id']}\t{site['name']}\t{site['write_key']}\t{' '.join(site['origins'])}")


@sites.command("rotate-key")
@click.argument("site")
@click.option("--write-key", "write_key", is_flag=True, help="Also replace the public write key (then update the snippet and SDKs).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites_rotate_key(site, write_key, as_json):
    """Give SITE (a name or id) a new API key, printed once; the old key and every dashboard session of the
    site stop working at once.

    Example: cohortly sites rotate-key shop --write-key
    """
    engine = _engine()
    found = find_site_or_fail(engine, site)
    keys = store.rotate_keys(engine, found["id"], write_key=write_key)
    if as_json:
        click.echo(json.dumps({"site_id": found["id"], **keys}))
        return
    click.echo("\n".join(f"{name + ':':<10} {value}" for name, value in keys.items()))
    click.echo("Keep the API key secret: it is stored hashed and cannot be shown again.", err=True)


@main.command("bad-rows")
@click.argument("site")
@click.option("--limit", default=20, show_default=True, help="How many of the newest to show.")
def bad_rows(site, limit):
    """Show the newest rejected messages of SITE (a name or id) with the reasons."""
    engine = _engine()
    found = find_site_or_fail(engine, site)
    for row in store.recent_bad_rows(engine, found["id"], limit):
        click.echo(json.dumps({"id": row["id"], "received_at": row["received_at"], "reason": row["reason"], "payload": row["payload"]}))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, help="Gunicorn workers (default: 2 × CPUs + 1).")
def serve(host, port, workers):
    """Run the collector under gunicorn; migrates an empty database first."""
    _ensure_schema(_engine())
    env = dict(os.environ, COHORTLY_BIND=f"{host}:{port}")
    if workers:
        env["COHORTLY_WORKERS"] = str(workers)
    conf = os.path.join(os.path.dirname(__file__), "gunicorn_conf.py")
    args = [sys.executable, "-m", "gunicorn", "-c", conf, "collector:create_app()"]
    os.execve(sys.executable, args, env)


def find_site_or_fail(engine, name_or_id):
    """The site named (or numbered) `name_or_id`, else a clear CLI error."""
    _ensure_schema(engine)
    site = store.find_site(engine, name=name_or_id)
    if site is None and name_or_id.isdigit():
        site = store.find_site(engine, site_id=int(name_or_id))
    if site is None:
        raise click.ClickException(f"No site named {name_or_id!r}.")
    return site


def _ensure_schema(engine):
    if db.is_empty(engine):
        db.upgrade(engine)


from segmenter.cli import register  # noqa: E402

register(main)

from demo.cli import register as register_demo  # noqa: E402

register_demo(main)

if __name__ == "__main__":
    main()
