"""The segmenter's commands, added to `cohortly` by `register(main)`: a thin shell over the library."""

import json
import signal
import sys
import time
from datetime import UTC, datetime

import click
from marshmallow import ValidationError

from core import sites, times
from core.times import iso
from segmenter import exports, policy, privacy, site_segments
from segmenter.reads import catalog, members, preview
from segmenter.rollup import job
from segmenter.rules.settings import load_settings
from segmenter.webhooks import network

PROGRESS_FROM = 10_000  # events: smaller backlogs finish before a bar is worth drawing


def _engine():
    """The configured engine, disposed when the command ends."""
    from core.app import create_app

    app = create_app()
    engine = app.extensions["cohortly_engine"]
    context = click.get_current_context()
    context.call_on_close(engine.dispose)
    context.meta["cohortly.config"] = app.config
    return engine


def _allowed_networks():
    """The networks webhooks may reach though not public (COHORTLY_WEBHOOK_ALLOW_NETWORKS)."""
    config = click.get_current_context().meta.get("cohortly.config", {})
    try:
        return network.allowed_networks(config.get("WEBHOOK_ALLOW_NETWORKS"))
    except ValueError as err:
        raise click.ClickException(str(err)) from None


def _ready_engine():
    engine = _engine()
    if not catalog.has_schema(engine):
        raise click.ClickException("The database has no segmenter tables yet: run `cohortly db upgrade`.")
    return engine


def _site(engine, name_or_id):
    from core.cli import find_site_or_fail

    return find_site_or_fail(engine, name_or_id)


def _parse_now(text):
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO time, e.g. 2026-01-05T12:00:00Z.", param_hint="--now"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(ms):
    return "-" if ms is None else iso(ms)[:19].replace("T", " ") + "Z"


def _progress(site_name, backlog):
    if backlog < PROGRESS_FROM or not sys.stdout.isatty():
        return _NoBar()
    return click.progressbar(length=backlog, label=f"{site_name}: folding {backlog:,} events")


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, _n):
        pass


def _report(summary, as_json):
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    if summary.status == "busy":
        click.echo(f"{summary.site_name}: another rollup is running; skipped.")
        return
    if summary.status == "failed":
        click.echo(f"{summary.site_name}: rollup failed: {summary.error}", err=True)
        return
    small = [name for name, seg in summary.segments.items() if seg["too_small"] and seg["members"]]
    click.echo(
        f"{summary.site_name}: folded {summary.events_folded:,} events, "
        f"judged {summary.profiles_evaluated:,} profiles, "
        f"{summary.enters} enters, {summary.exits} exits"
        + (f" (changes {summary.first_change_id}-{summary.last_change_id})" if summary.first_change_id else "")
        + (f"; under the minimum size: {', '.join(small)}" if small else "")
    )


@click.command()
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Run again every SECONDS until stopped (Ctrl-C or SIGTERM).",
)
@click.option(
    "--now", "now_text", metavar="ISO", help="Judge as of this time (backfills, tests), e.g. 2026-01-05T12:00:00Z."
)
@click.option("--site", "site_name", metavar="SITE", help="Only this site (a name or id).")
@click.option("--status", is_flag=True, help="Show the recent runs instead: time, events folded, enters/exits, errors.")
@click.option("--limit", default=20, show_default=True, help="How many runs --status shows.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    metavar="EVENTS",
    help="Most events folded per transaction [default: 50,000 on SQLite, where chunks adapt to "
    "hold the write lock about 2 s; 200,000 on PostgreSQL].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per site (or run).")
def rollup(every, now_text, site_name, status, limit, chunk_size, as_json):
    """Fold new events into profile facts and move profiles in and out of segments.

    Then, once every site's rollup has committed, send the webhooks what is due: at most 20 s a pass.

    Example: cohortly rollup --every 60
    """
    engine = _ready_engine()
    site_id = _site(engine, site_name)["id"] if site_name else None
    if status:
        _show_status(engine, site_id, limit, as_json)
        return
    now = _parse_now(now_text)
    allowed = _allowed_networks()
    if every is not None:
        # A service manager stops the loop with SIGTERM (systemd, docker stop): stop as on Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            started = time.monotonic()
            done = job.run_pass(
                engine,
                now=now,
                site_id=site_id,
                allowed=allowed,
                chunk_size=chunk_size,
                progress=None if as_json else _progress,
            )
            for summary in done.summaries:
                _report(summary, as_json)
            _report_pass(done)
            if every is None:
                if done.failed:
                    sys.exit(1)
                return
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        # Safe at any point: an interrupted chunk rolls back, and the next run resumes from its watermark.
        click.echo("Stopped.", err=True)


def _report_pass(done):
    """The webhook pass and the purge of a rollup pass, on stderr."""
    if done.webhook_error:
        click.echo(f"webhooks: delivery pass failed: {done.webhook_error}", err=True)
    elif done.webhooks.delivered or done.webhooks.failed:
        click.echo(f"webhooks: {done.webhooks.delivered} delivered, {done.webhooks.failed} failed", err=True)
    for name, purged in done.purged.items():
        click.echo(f"{name}: purged {purged:,} events past retention", err=True)
    for name, error in done.purge_errors.items():
        click.echo(f"{name}: purge failed: {error}", err=True)


def _show_status(engine, site_id, limit, as_json):
    names = {site["id"]: site["name"] for site in _sites(engine)}
    for run in catalog.recent_runs(engine, site_id, limit):
        if as_json:
            click.echo(json.dumps(run))
            continue
        click.echo(
            f"{_iso(run['started_at'])}  {names.get(run['site_id'], run['site_id'])}  {run['status']:<11}  "
            f"folded {run['events_folded']:,}  enters {run['enters']}  exits {run['exits']}  "
            f"watermark {run['watermark_to']}  errors: {run['error'] or '-'}"
        )


def _sites(engine):

    return sites.list_sites(engine)


@click.command("configure")
@click.argument("site")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a segment setting, e.g. cart_abandon_after=2h (repeatable).",
)
@click.option("--unset", multiple=True, metavar="NAME", help="Return a setting to its default (repeatable).")
def configure(site, assignments, unset):
    """Show or change SITE's segment settings (durations like 30m, 2h, 7d).

    Example: cohortly sites configure shop --set cart_abandon_after=2h --set min_segment_size=50
    """
    engine = _ready_engine()
    found = _site(engine, site)
    pairs = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep:
            raise click.BadParameter(f"{assignment!r} is not NAME=VALUE.", param_hint="--set")
        pairs[name.strip()] = value.strip()
    try:
        settings = catalog.configure_site(engine, found["id"], pairs, unset)
    except ValidationError as err:
        raise click.ClickException("Invalid settings: " + _messages(err.messages)) from None
    for name, value in catalog.describe_settings(settings).items():
        click.echo(f"{name} = {value}")


@click.command("identity-secret")
@click.argument("site")
@click.option("--rotate", is_flag=True, help="Replace the secret: hashes made with the old one stop verifying.")
def identity_secret(site, rotate):
    """Print SITE's identity secret (made on first use) and turn identity verification on.

    Your server sends each signed-in user's `userHash`: hex HMAC-SHA256 of the userId under this secret
    (see PRIVACY.md). Keep it secret: whoever has it can link any user id.

    Example: cohortly sites identity-secret shop
    """
    engine = _ready_engine()
    secret = catalog.identity_secret(engine, _site(engine, site)["id"], rotate=rotate)
    click.echo(secret)
    click.echo("identity_verification = True (collectors pick it up within COHORTLY_SITE_CACHE_SECONDS)", err=True)


def _messages(messages):
    if isinstance(messages, dict):
        return "; ".join(
            f"{name}: {' '.join(map(str, errors if isinstance(errors, list) else [errors]))}"
            for name, errors in messages.items()
        )
    return " ".join(map(str, messages))


@click.group()
def segments():
    """Segments and their members."""


@segments.command("list")
@click.argument("site")
def segments_list(site):
    """List SITE's segments with their sizes; those under min_segment_size are marked."""
    engine = _ready_engine()
    for segment in catalog.list_segments(engine, _site(engine, site)["id"]):
        mark = "  (under the minimum size)" if segment["too_small"] and segment["members"] else ""
        click.echo(f"{segment['name']:<20} {segment['members']:>8}  {segment['description']}{mark}")


def _definition_file(file):
    """The JSON of --file, or a clear error."""
    try:
        return json.load(file)
    except (ValueError, RecursionError) as err:
        raise click.ClickException(f"{file.name} is not JSON: {err}") from None


def _segment_change(call):
    """Run a definition change; print the version made as JSON, or the problems one a line."""
    try:
        saved = call()
    except site_segments.InvalidDefinition as err:
        raise click.ClickException(
            "The definition is not valid:\n"
            + "\n".join(f"  {where or '/'}: {why}" for where, why in err.problems.items())
        ) from None
    except site_segments.TooManySegments as err:
        raise click.ClickException(str(err)) from None
    except (site_segments.SegmentExists, site_segments.UnknownSegment, site_segments.BuiltInSegment) as err:
        kind = {"SegmentExists": "exists already", "UnknownSegment": "is not a site-defined segment"}
        raise click.ClickException(
            f"{err} " + kind.get(type(err).__name__, "is built in: change it with `cohortly sites configure`")
        ) from None
    click.echo(json.dumps({**saved, "created_at": iso(saved["created_at"])}))


@segments.command("create")
@click.argument("site")
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), required=True, help="The definition (JSON).")
def segments_create(site, file):
    """Define a segment from a JSON file: {"name", "description", "rule", "requires"} (docs/segments.md).

    Example: cohortly segments create shop --file shoe_fans.json
    """
    engine = _ready_engine()
    site_id = _site(engine, site)["id"]
    definition = _definition_file(file)
    _segment_change(lambda: site_segments.create(engine, site_id, definition, "cli", times.now_ms()))


@segments.command("update")
@click.argument("site")
@click.argument("name")
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), required=True, help="The new definition.")
def segments_update(site, name, file):
    """Replace the rule of SITE's segment NAME: a new version, judged at the next rollup."""
    engine = _ready_engine()
    site_id = _site(engine, site)["id"]
    definition = _definition_file(file)
    _segment_change(lambda: site_segments.update(engine, site_id, name, definition, "cli", times.now_ms()))


@segments.command("delete")
@click.argument("site")
@click.argument("name")
def segments_delete(site, name):
    """Delete SITE's segment NAME: its members exit at the next rollup; its versions stay."""
    engine = _ready_engine()
    site_id = _site(engine, site)["id"]
    _segment_change(lambda: site_segments.delete(engine, site_id, name, "cli", times.now_ms()))


@segments.command("versions")
@click.argument("site")
@click.argument("name")
def segments_versions(site, name):
    """Every version of SITE's segment NAME as JSON lines, oldest first."""
    engine = _ready_engine()
    site_id = _site(engine, site)["id"]
    with engine.connect() as conn:
        try:
            found = site_segments.history(conn, site_id, name)
        except site_segments.UnknownSegment:
            raise click.ClickException(f"{name} is not a site-defined segment.") from None
    for version in found:
        click.echo(json.dumps({**version, "created_at": iso(version["created_at"])}))


@segments.command("preview")
@click.argument("site")
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), required=True, help='{"rule", "requires"?}')
@click.option("--against", "name", metavar="SEGMENT", help="Count the enters and exits against this segment.")
def segments_preview(site, file, name):
    """What a rule would give now: size, a sample (under the site's policy), enters and exits. Saves nothing."""
    engine = _ready_engine()
    found = _site(engine, site)
    body = _definition_file(file)
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key in ("rule", "requires")}
        if name:
            body["name"] = name
    try:
        answer = preview.preview(engine, found["id"], body, load_settings(found["settings"]), times.now_ms())
    except site_segments.InvalidDefinition as err:
        raise click.ClickException(
            "The rule is not valid:\n" + "\n".join(f"  {where or '/'}: {why}" for where, why in err.problems.items())
        ) from None
    except preview.Busy as err:
        raise click.ClickException(str(err)) from None
    click.echo(json.dumps(answer, default=str))


@segments.command("members")
@click.argument("site")
@click.argument("segment")
@click.option("--limit", default=100, show_default=True)
@click.option("--after", metavar="PROFILE_ID", help="Continue after this profile id.")
def segments_members(site, segment, limit, after):
    """Print the members of SEGMENT as JSON lines: profile, user id, email, since when, context.

    The site's policy applies (PRIVACY.md): refused under min_export_size, without consent left out.
    """
    engine = _ready_engine()
    site_id = _site(engine, site)["id"]
    _segment_or_fail(engine, site_id, segment)
    settings = _listable(engine, site_id, segment)
    with engine.connect() as conn:
        page = members.member_page(conn, site_id, segment, after=after, limit=min(limit, catalog.PAGE_MAX))
    keep = ("profile_id", "user_id", "email", "traits", "entered_at", "context")
    for member in policy.shown_members(settings, page):
        click.echo(json.dumps({key: member[key] for key in keep}))


def _segment_or_fail(engine, site_id, segment):
    with engine.connect() as conn:
        if not catalog.segment_exists(conn, site_id, segment):
            raise click.ClickException(f"No segment named {segment!r}.")


def _listable(engine, site_id, segment):
    """The site's settings, once its policy lets SEGMENT's members out (else a clear error)."""
    settings = catalog.site_settings(engine, site_id)
    with engine.connect() as conn:
        size = catalog.count_members(conn, site_id, segment, up_to=policy.sizes_needed(settings))
    refusal = policy.refusal(settings, size)
    if refusal:
        raise click.ClickException(refusal)
    return settings


@segments.command("export")
@click.argument("segment")
@click.option("--site", "site_name", metavar="SITE", help="The site (a name or id); needed when there are several.")
@click.option("--format", "format_", type=click.Choice(exports.FORMATS), default="ndjson", show_default=True)
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="A file (default: stdout).")
def segments_export(segment, site_name, format_, output):
    """Write every member of SEGMENT as CSV or NDJSON, streamed: any size, flat memory.

    Example: cohortly segments export cart_abandoners --site shop --format csv --output carts.csv
    """
    engine = _ready_engine()
    site_id = _one_site(engine, site_name)["id"]
    _segment_or_fail(engine, site_id, segment)
    settings = _listable(engine, site_id, segment)
    rows = policy.shown_members(settings, members.stream_members(engine, site_id, segment))
    for line in exports.export_lines(rows, format_):
        output.write(line)


def _one_site(engine, site_name):
    """The site named by --site, or the only site there is."""
    if site_name:
        return _site(engine, site_name)
    every = _sites(engine)
    if len(every) != 1:
        raise click.ClickException("Name the site with --site (there are several, or none).")
    return every[0]


@click.group()
def profiles():
    """Privacy requests about one person (see PRIVACY.md)."""


@profiles.command("delete")
@click.argument("profile_id")
@click.option("--site", "site_name", metavar="SITE", help="The site (a name or id); needed when there are several.")
def profiles_delete(profile_id, site_name):
    """Erase everything stored about PROFILE_ID (a user id, anonymous id or u:/a: profile id) and its linked ids.

    Example: cohortly profiles delete ann@example.com --site shop
    """
    engine = _ready_engine()
    site = _one_site(engine, site_name)
    try:
        counts = privacy.erase_profile(engine, site["id"], profile_id, times.now_ms())
    except privacy.UnknownProfile:
        raise click.ClickException(f"Nothing is stored under {profile_id!r}.") from None
    except privacy.Busy as err:
        raise click.ClickException(str(err)) from None
    click.echo(json.dumps({"erased": counts}))


@profiles.command("export")
@click.argument("profile_id")
@click.option("--site", "site_name", metavar="SITE", help="The site (a name or id); needed when there are several.")
def profiles_export(profile_id, site_name):
    """Print everything stored about PROFILE_ID as NDJSON ({"table": ..., "row": ...} a line)."""
    engine = _ready_engine()
    site = _one_site(engine, site_name)
    try:
        for record in privacy.profile_records(engine, site["id"], profile_id):
            click.echo(json.dumps(record, default=str))
    except privacy.UnknownProfile:
        raise click.ClickException(f"Nothing is stored under {profile_id!r}.") from None


@click.command()
@click.option("--site", "site_name", metavar="SITE", help="Only this site (a name or id).")
def purge(site_name):
    """Delete events older than each site's retention_days (already folded ones only), in small batches."""
    engine = _ready_engine()
    for site in [_site(engine, site_name)] if site_name else _sites(engine):
        try:
            purged = privacy.purge_events(engine, site["id"], times.now_ms())
        except privacy.Busy as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"{site['name']}: purged {purged:,} events")


def register(main):
    """Add the segmenter's commands to the `cohortly` group (and `configure` to `cohortly sites`)."""
    main.add_command(rollup)
    main.add_command(segments)
    main.add_command(profiles)
    main.add_command(purge)
    main.commands["sites"].add_command(configure)
    main.commands["sites"].add_command(identity_secret)
