"""The `cohortly` command group: the database, sites and keys, `serve`; each domain adds its own commands.
A thin shell over the library."""

import importlib
import json
import os
import sys
from typing import Any, NoReturn

import click
from sqlalchemy import Engine

from core import db, sites
from core.app import DOMAINS, create_app
from core.settings import SettingError


def engine_of_command() -> Engine:
    """The configured engine, disposed when the command ends."""
    engine = create_app().extensions["cohortly_engine"]
    click.get_current_context().call_on_close(engine.dispose)
    return engine


class _Group(click.Group):
    """The `cohortly` group: each domain's commands are added on first use (core never imports a domain), and
    a bad setting is one line and exit code 1, for every command."""

    domains_added = False

    def _add_domains(self):
        if not self.domains_added:
            self.domains_added = True
            for name in DOMAINS:
                importlib.import_module(f"{name}.commands").register(self)

    def get_command(self, ctx, cmd_name):
        self._add_domains()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        self._add_domains()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group)
def main() -> None:
    """Cohortly: self-hosted behavioural segmentation."""


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations (safe to run again)."""
    db.upgrade(engine_of_command())
    click.echo("Database is up to date.")


@main.group("sites")
def sites_group() -> None:
    """Sites and their keys."""


@sites_group.command("create")
@click.argument("name")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="An origin allowed to send from browsers, e.g. https://shop.example (repeatable; * allows any).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites_create(name: str, origins: tuple[str, ...], as_json: bool) -> None:
    """Create a site and print its id, write key and API key (shown only once).

    Example: cohortly sites create shop --origin https://shop.example
    """
    engine = engine_of_command()
    _ensure_schema(engine)
    try:
        site = sites.create_site(engine, name, origins)
    except sites.SiteExists as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps({key: site[key] for key in ("site_id", "write_key", "api_key")}))
        return
    click.echo(f"site_id:   {site['site_id']}\nwrite_key: {site['write_key']}\napi_key:   {site['api_key']}")
    click.echo("Keep the API key secret: it is stored hashed and cannot be shown again.", err=True)


@sites_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def sites_list(as_json: bool) -> None:
    """List the sites with their write keys and origins."""
    engine = engine_of_command()
    _ensure_schema(engine)
    for site in sites.list_sites(engine):
        if as_json:
            click.echo(json.dumps(site))
        else:
            click.echo(f"{site['id']}\t{site['name']}\t{site['write_key']}\t{' '.join(site['origins'])}")


@sites_group.command("rotate-key")
@click.argument("site")
@click.option(
    "--write-key",
    "write_key",
    is_flag=True,
    help="Also replace the public write key (then update the snippet and SDKs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites_rotate_key(site: str, write_key: bool, as_json: bool) -> None:
    """Give SITE (a name or id) a new API key, printed once; the old key and every dashboard session of the
    site stop working at once.

    Example: cohortly sites rotate-key shop --write-key
    """
    engine = engine_of_command()
    found = find_site_or_fail(engine, site)
    keys = sites.rotate_keys(engine, found["id"], write_key=write_key)
    if as_json:
        click.echo(json.dumps({"site_id": found["id"], **keys}))
        return
    click.echo("\n".join(f"{name + ':':<10} {value}" for name, value in keys.items()))
    click.echo("Keep the API key secret: it is stored hashed and cannot be shown again.", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, help="Gunicorn workers (default: 2 × CPUs + 1).")
def serve(host: str, port: int, workers: int | None) -> NoReturn:
    """Run the collector under gunicorn; migrates an empty database first."""
    _ensure_schema(engine_of_command())
    env = dict(os.environ, COHORTLY_BIND=f"{host}:{port}")
    if workers:
        env["COHORTLY_WORKERS"] = str(workers)
    conf = os.path.join(os.path.dirname(__file__), "gunicorn_conf.py")
    args = [sys.executable, "-m", "gunicorn", "-c", conf, "core.app:create_app()"]
    os.execve(sys.executable, args, env)


def find_site_or_fail(engine: Engine, name_or_id: str) -> dict[str, Any]:
    """The site named (or numbered) `name_or_id`, else a clear CLI error."""
    _ensure_schema(engine)
    site = sites.find_site(engine, name=name_or_id)
    if site is None and name_or_id.isdigit():
        site = sites.find_site(engine, site_id=int(name_or_id))
    if site is None:
        raise click.ClickException(f"No site named {name_or_id!r}.")
    return site


def _ensure_schema(engine):
    if db.is_empty(engine):
        db.upgrade(engine)


if __name__ == "__main__":
    main()
