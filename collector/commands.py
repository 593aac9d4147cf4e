"""Ingestion's commands, added to `cohortly` by `register(group)`."""

import json

import click

from collector import store
from core.cli import engine_of_command, find_site_or_fail


@click.command("bad-rows")
@click.argument("site")
@click.option("--limit", default=20, show_default=True, help="How many of the newest to show.")
def bad_rows(site, limit):
    """Show the newest rejected messages of SITE (a name or id) with the reasons."""
    engine = engine_of_command()
    found = find_site_or_fail(engine, site)
    for row in store.recent_bad_rows(engine, found["id"], limit):
        click.echo(
            json.dumps(
                {"id": row["id"], "received_at": row["received_at"], "reason": row["reason"], "payload": row["payload"]}
            )
        )


def register(group):
    group.add_command(bad_rows)
