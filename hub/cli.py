"""The `hub` command: what an ops person types.

Exit codes: 0 all good; 1 something needs attention (records dead-lettered, a failed run,
a broken audit chain); 2 the config (or a mapping) is wrong. Every listing takes --json.
Errors are printed as sentences naming where the problem is, never as tracebacks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from hub.config.model import Settings
from hub.errors import ConfigError, HubError, StoreError
from hub.runtime import tune_gc

EXIT_ATTENTION = 1
EXIT_CONFIG = 2


def _fail(message: str, code: int = EXIT_ATTENTION) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn Liaison's errors into messages and exit codes."""
    try:
        yield
    except ConfigError as exc:
        n = len(exc.problems)
        click.echo(f"The configuration has {n} problem{'s' if n != 1 else ''}:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(EXIT_CONFIG)
    except StoreError as exc:
        _fail(f"Store problem: {exc}")
    except HubError as exc:
        _fail(str(exc))


def _n(count: int, noun: str) -> str:
    """'1 flow', '2 flows'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _emit_json(data: Any) -> None:
    from hub.config import redact

    click.echo(json.dumps(redact(data), indent=2, default=str, ensure_ascii=False))


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


class Ctx:
    """Lazily loaded settings and store for one command."""

    def __init__(self, config: str | None) -> None:
        self.config_opt = config
        self._settings: Settings | None = None
        self._store: Any = None

    @property
    def settings(self) -> Settings:
        from hub.config import find_config, load

        if self._settings is None:
            self._settings = load(find_config(self.config_opt))
        return self._settings

    @property
    def store(self) -> Any:
        return self._open_store(wait=0.0)

    def long_running_store(self) -> Any:
        """The store, for a command that serves until stopped: a database that is still
        starting is waited for (hub.store.STORE_WAIT_SECONDS) instead of failing."""
        from hub.store import STORE_WAIT_SECONDS

        return self._open_store(wait=STORE_WAIT_SECONDS)

    def _open_store(self, *, wait: float) -> Any:
        from hub.store import Store

        if self._store is None:
            self._store = Store(self.settings.store_url, wait=wait)
        return self._store

    def engine(self) -> Any:
        from hub.observers import run_observers
        from hub.sync.engine import SyncEngine

        return SyncEngine(self.settings, self.store,
                          observers=run_observers(self.settings, self.store))


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", metavar="PATH", envvar="HUB_CONFIG",
              help="The config file (default: $HUB_CONFIG, else ./hub.yaml).")
@click.version_option(package_name="liaison-hub", prog_name="hub")
@click.pass_context
def main(click_ctx: click.Context, config: str | None) -> None:
    """Liaison keeps your CRM, accounting, email and project tools in sync."""
    click_ctx.obj = Ctx(config)


# -- set up ------------------------------------------------------------------------------


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing hub.yaml.")
def init(directory: Path, force: bool) -> None:
    """Write a commented example hub.yaml (and a data/ folder) into DIRECTORY."""
    from hub.config import example_config

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "hub.yaml"
    if target.exists() and not force:
        _fail(f"{target} already exists; use --force to overwrite it")
    target.write_text(example_config(), encoding="utf-8")
    (directory / "data").mkdir(exist_ok=True)
    click.echo(f"Wrote {target}. Next: edit it, then run `hub check`.")


@main.command()
@click.option("--connect", is_flag=True, help="Also call each connected system (a cheap "
              "authenticated call) and say, per system, whether it answered and accepted "
              "the credentials.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              metavar="SECONDS", help="With --connect: how long each system may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def check(ctx: Ctx, connect: bool, timeout: float, as_json: bool) -> None:
    """Validate the config, its mappings and its connectors without touching the store.

    With --connect, also check each connection: exit 0 when every connected system
    answered, 1 when one failed its check, 2 when the config is wrong.
    """
    from hub.checks import check_settings, connect_systems, connection_lines

    with _errors():
        settings = ctx.settings
        summary = check_settings(settings)
    checks = connect_systems(settings, timeout) if connect else []
    failed = [c for c in checks if not c.ok]
    # A connection whose settings cannot even build its connector is a config problem.
    code = (EXIT_CONFIG if any(c.kind == "setup" for c in failed)
            else EXIT_ATTENTION if failed else 0)
    if as_json:
        _emit_json({**summary, "ok": not failed, "connections": checks} if connect
                   else summary)
        sys.exit(code)
    click.echo(f"{settings.file}: OK")
    click.echo(f"  {_n(summary['systems'], 'system')} ({summary['connected']} connected, "
               f"{_n(summary['silos'], 'disconnected silo')}), {_n(summary['flows'], 'flow')}, "
               f"{_n(summary['mappings'], 'mapping')} compiled")
    if not connect:
        return
    click.echo("Connections:")
    for line in connection_lines(checks):
        click.echo(line)
    connected = summary["connected"]
    if failed:
        _fail(f"{len(failed)} of {_n(connected, 'connected system')} failed the check: "
              f"{', '.join(c.system for c in failed)}", code)
    click.echo(f"All {_n(connected, 'connected system')} answered." if connected
               else "No system is connected yet.")


@main.command()
@pass_ctx
def migrate(ctx: Ctx) -> None:
    """Create or upgrade the store's tables to this version of Liaison."""
    from hub.store import Store
    from hub.store.db import redact_url

    with _errors():
        url = ctx.settings.store_url
        before, after = Store.migrate(url)
    if before == after:
        click.echo(f"{redact_url(url)} is up to date (migration {after}).")
    else:
        click.echo(f"{redact_url(url)} migrated from {before or 'empty'} to {after}.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def connectors(as_json: bool) -> None:
    """List installed connectors and what each can do."""
    from hub import registry

    rows: list[dict[str, Any]] = []
    for name, cls in sorted(registry.available().items()):
        caps = cls.capabilities
        rows.append({"name": name,
                     "entities": {e: {"object": s.object, "read": s.read, "write": s.write,
                                      "incremental": s.incremental, "deletes": s.deletes}
                                  for e, s in caps.entities.items()},
                     "batch_size": caps.batch_size, "webhooks": caps.webhooks,
                     "settings": dict(caps.settings)})
    failures = registry.failures()
    if as_json:
        # Descriptions of settings, not their values: nothing here is secret to redact.
        click.echo(json.dumps({"connectors": rows, "failed": failures}, indent=2))
        return
    table = []
    for r in rows:
        ents = r["entities"]
        reads = ",".join(e for e, s in ents.items() if s["read"])
        writes = ",".join(e for e, s in ents.items() if s["write"])
        incr = ",".join(e for e, s in ents.items() if s["incremental"]) or "-"
        table.append([r["name"], reads, writes, incr, r["batch_size"],
                      "yes" if r["webhooks"] else "no"])
    _table(table, ["connector", "reads", "writes", "incremental", "batch", "webhooks"])
    for name, reason in failures.items():
        click.echo(f"! connector {name} failed to load and was skipped: {reason}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def systems(ctx: Ctx, as_json: bool) -> None:
    """The inventory: every system, its owner, whether it is connected, its last sync."""
    from hub.inventory import inventory

    with _errors():
        rows = inventory(ctx.settings, ctx.store)
    if as_json:
        _emit_json(rows)
        return
    _table([[r["system"], r["category"], r["owner"] or "(no owner!)",
             r["connector"] or "not connected", r["last_sync"] or "never"] for r in rows],
           ["system", "category", "owner", "connection", "last successful sync"])


# -- syncing -----------------------------------------------------------------------------


def _progress_printer() -> Callable[[Any], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(c: Any) -> None:
        click.echo(f"\r  read {c.read:,}  created {c.created:,}  updated {c.updated:,}  "
                   f"unchanged {c.unchanged:,}  written {c.written:,}  "
                   f"dead-lettered {c.dead_lettered + c.write_failed:,}", err=True, nl=False)

    return show


def _report_dict(report: Any) -> dict[str, Any]:
    c = report.counts
    return {"run": report.run_id, "flow": report.flow, "status": report.status,
            "resumed": report.resumed, "error": report.error, "seconds": round(report.seconds, 3),
            "counts": c.as_row(), "skipped_reasons": dict(c.skip_reasons),
            "balanced": c.balanced(), "notes": list(report.notes)}


@main.command()
@click.argument("flow")
@click.option("--full", is_flag=True, help="Read everything, not just what changed; detect "
              "records deleted in the source.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def sync(ctx: Ctx, flow: str, full: bool, dry_run: bool, as_json: bool) -> None:
    """Run FLOW now. Exit 0 when everything was delivered, 1 otherwise, 2 on bad config."""
    from hub.sync.context import FlowContext

    with _errors():
        # Everything that can be wrong with the config is found before the store is opened
        # (and so before an empty store file is created).
        FlowContext.build(ctx.settings, ctx.settings.flow(flow)).close()
        engine = ctx.engine()
        tune_gc()
        progress = None if as_json else _progress_printer()
        report = engine.run(flow, full=full, dry_run=dry_run, progress=progress)
    if progress is not None:
        click.echo("", err=True)
    if as_json:
        _emit_json(_report_dict(report))
        sys.exit(report.exit_code)
    c = report.counts
    dead_word = "would be dead-lettered" if dry_run else "dead-lettered"
    if dry_run:
        title = f"Dry run of flow {report.flow} (nothing was written)"
    else:
        status = {"retry": "interrupted; the next sync resumes where it stopped",
                  "continuing": "paused; the next sync continues it"}.get(report.status,
                                                                            report.status)
        title = (f"{'Resumed run' if report.resumed else 'Run'} {report.run_id} of flow "
                 f"{report.flow}: {status}")
    click.echo(f"{title} in {report.seconds:.1f}s")
    click.echo(f"  read {c.read}: created {c.created}, updated {c.updated}, unchanged "
               f"{c.unchanged}, skipped {c.skipped}, {dead_word} {c.dead_lettered}")
    verb = "would write" if dry_run else "written"
    click.echo(f"  targets: {verb} {c.written}, already up to date {c.write_unchanged}, "
               f"dead-lettered {c.write_failed}, waiting to retry {c.pending}")
    if c.deleted:
        click.echo(f"  deleted in source: {c.deleted}")
    for reason, n in c.skip_reasons.items():
        click.echo(f"  skipped {n}: {reason}")
    for note in report.notes:
        click.echo(f"  note: {note}")
    if report.error:
        click.echo(f"  error: {report.error}", err=True)
    if (c.dead_lettered or c.write_failed) and not dry_run:
        click.echo("  see `hub dlq list` for the dead-lettered records and why")
    elif c.dead_lettered:
        click.echo("  run without --dry-run, then `hub dlq list` shows them and why")
    sys.exit(report.exit_code)


@main.command()
@click.option("--flow", help="Only this flow's runs.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def runs(ctx: Ctx, flow: str | None, limit: int, as_json: bool) -> None:
    """Recent runs with their counts."""
    from hub.insights.listings import run_rows

    with _errors():
        data = run_rows(ctx.store, flow, limit)
    if as_json:
        _emit_json(data)
        return
    _table([[r["id"], r["flow"], r["mode"], r["status"], r["started_at"][:19], r["read"],
             r["created"], r["updated"], r["unchanged"], r["skipped"],
             r["dead_lettered"] + r["write_failed"], r["written"], r["error"] or ""]
            for r in data],
           ["run", "flow", "mode", "status", "started", "read", "created", "updated",
            "unchanged", "skipped", "dead", "written", "error"])


# -- dead letters ------------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Dead letters: records that could not be synced, with the reason."""


@dlq.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include replayed and discarded ones.")
@click.option("--flow", help="Only this flow's.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def dlq_list(ctx: Ctx, show_all: bool, flow: str | None, as_json: bool) -> None:
    """List dead letters (open ones unless --all)."""
    from hub.insights.listings import dead_letter_rows

    with _errors():
        data = dead_letter_rows(ctx.store, status=None if show_all else "open", flow=flow)
    if as_json:
        _emit_json(data)
        return
    if not data:
        click.echo("No dead letters.")
        return
    _table([[r["id"], r["flow"], r["system"], r["stage"], r["external_id"] or "-",
             r["status"], r["error"][:100]] for r in data],
           ["id", "flow", "system", "stage", "record", "status", "reason"])


@dlq.command("show")
@click.argument("dead_letter", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def dlq_show(ctx: Ctx, dead_letter: int, as_json: bool) -> None:
    """Show one dead letter: the record as it was read or written, and why it failed."""
    from hub.insights.listings import dead_letter_detail

    with _errors():
        data = dead_letter_detail(ctx.store, dead_letter)
    if data is None:
        _fail(f"there is no dead letter {dead_letter} (see `hub dlq list`)")
    if as_json:
        _emit_json(data)
        return
    for key in ("id", "flow", "system", "entity", "stage", "external_id", "canonical_id",
                "status", "attempts", "first_failed_at", "last_failed_at", "error"):
        click.echo(f"{key:>15}: {data[key]}")
    from hub.config import redact

    click.echo("        payload:")
    click.echo(json.dumps(redact(data["payload"]), indent=2, ensure_ascii=False, default=str))


@dlq.command("replay")
@click.argument("dead_letters", type=int, nargs=-1, required=True)
@pass_ctx
def dlq_replay(ctx: Ctx, dead_letters: tuple[int, ...]) -> None:
    """Send dead-lettered records through their flow again (safe to repeat)."""
    from hub.sync.replay import replay

    failed = 0
    with _errors():
        engine = ctx.engine()
        for dl in dead_letters:
            outcome = replay(engine, dl)
            click.echo(outcome.message)
            failed += outcome.counts.dead_lettered + outcome.counts.write_failed
    sys.exit(EXIT_ATTENTION if failed else 0)


@dlq.command("discard")
@click.argument("dead_letters", type=int, nargs=-1, required=True)
@pass_ctx
def dlq_discard(ctx: Ctx, dead_letters: tuple[int, ...]) -> None:
    """Give up on dead letters on purpose (they are kept, marked discarded)."""
    from hub.sync.replay import discard

    with _errors():
        engine = ctx.engine()
        for dl in dead_letters:
            click.echo(discard(engine, dl).message)


# -- audit -------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.option("--record", help="A canonical id or an external id.")
@click.option("--system", help="Only changes in this system.")
@click.option("--flow", help="Only changes made by this flow.")
@click.option("--since", help="Only changes at or after this time (e.g. 2026-11-01 or "
              "2026-11-01T08:00:00Z).")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def audit(click_ctx: click.Context, record: str | None, system: str | None, flow: str | None,
          since: str | None, limit: int, as_json: bool) -> None:
    """Search the audit trail (newest first); `hub audit verify` checks its hash chain."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.obj
    if since is not None:
        since = _parse_since(since)
    from hub.insights.listings import audit_rows

    with _errors():
        data = audit_rows(ctx.store, record=record, system=system, flow=flow, since=since,
                          limit=limit)
    if as_json:
        _emit_json(data)
        return
    if not data:
        click.echo("No audit events match.")
        return
    for d in data:
        fields = ", ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in list(d["diff"].items())[:6])
        more = " ..." if len(d["diff"]) > 6 else ""
        click.echo(f"#{d['seq']} {d['at'][:19]} {d['action']} {d['entity']} {d['canonical_id']}"
                   f" [{d['system'] or '-'} {d['external_id'] or ''}] run {d['run_id']}")
        if fields:
            click.echo(f"    {fields}{more}")


def _parse_since(text: str) -> str:
    """A --since value as the store's timestamp form; exit 2 when it is not a time."""
    from hub.insights.listings import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        _fail(f"--since {exc}", EXIT_CONFIG)


@audit.command("verify")
@click.option("--full/--since-checkpoint", default=True, show_default=True,
              help="Re-read every event (the default; run it daily), or only the events "
              "after the last verified checkpoint, trusting the check that verified it.")
@pass_ctx
def audit_verify(ctx: Ctx, full: bool) -> None:
    """Check the audit chain: exit 0 if intact, 1 naming the first bad event."""
    with _errors():
        result = ctx.store.verify_audit(since_checkpoint=not full)
    trusted = (f"; events 1-{result.trusted} were verified at {result.trusted_at} and not "
               "re-read (`hub audit verify` re-reads them)") if result.trusted else ""
    if result.ok:
        click.echo(f"Audit chain intact: {result.checked} "
                   f"{'new ' if result.trusted else ''}events verified{trusted}.")
        return
    _fail(f"Audit chain BROKEN at event {result.bad_seq}: {result.message} "
          f"({result.checked} events before it verified{trusted}).")


# -- mappings ----------------------------------------------------------------------------


@main.group("map")
def map_group() -> None:
    """Work with mapping files."""


@map_group.command("preview")
@click.argument("mapping")
@click.option("--input", "input_file", required=True, type=click.Path(exists=True,
              dir_okay=False, path_type=Path), help="A native record as JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def map_preview(mapping: str, input_file: Path, as_json: bool) -> None:
    """Show MAPPING applied to a record: native -> canonical -> native, with validation."""
    from hub.canonical import validate
    from hub.mapping import compile_mapping, load_mapping

    with _errors():
        compiled = compile_mapping(load_mapping(mapping))
        try:
            native = json.loads(input_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            _fail(f"{input_file}: not a JSON record: {exc}", EXIT_CONFIG)
        inbound = compiled.inbound(native, {})
        problems = validate(compiled.entity, inbound.data)
        back = compiled.outbound(inbound.data, {})
    result = {"external_id": inbound.external_id, "canonical": inbound.data,
              "updated_at": inbound.updated_at, "deleted": inbound.deleted,
              "skip_reason": inbound.skip_reason, "validation": problems or "valid",
              "native_again": back}
    if as_json:
        _emit_json(result)
    else:
        click.echo(f"record {inbound.external_id} -> canonical {compiled.entity}:")
        click.echo(json.dumps(inbound.data, indent=2, ensure_ascii=False, default=str))
        click.echo("validation: " + ("valid" if not problems else "; ".join(problems)))
        if inbound.skip_reason:
            click.echo(f"would be skipped: {inbound.skip_reason}")
        click.echo(f"canonical -> {compiled.connector} {compiled.object} again:")
        click.echo(json.dumps(back, indent=2, ensure_ascii=False, default=str))
    sys.exit(EXIT_ATTENTION if problems else 0)


# -- demo and sandboxes ------------------------------------------------------------------


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("liaison-demo"), show_default=True,
              help="Where to write the demo's config, store and spreadsheets.")
@click.option("--count", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Contacts in the CRM sandbox.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Serve the dashboard after the syncs, until Ctrl-C (--no-serve: stop "
                   "after the syncs, for scripts).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="The dashboard's port on 127.0.0.1 (0: any free port).")
def demo(directory: Path, count: int, serve: bool, port: int) -> None:
    """Start sandboxes of HubSpot, Xero, Trello and Jira, sync them, serve the dashboard.

    Writes a config with systems of every category (some still islands), syncs twice with
    a few changes in between (one flow fails on purpose, to show what a failure looks
    like), prints what happened, then serves the dashboard with a login made up for the
    session until Ctrl-C.
    """
    from hub.demo import run_demo

    with _errors():
        code = run_demo(directory, count, echo=click.echo, serve=serve, port=port)
    sys.exit(code)


SANDBOXES = ("hubspot", "pipedrive", "xero", "trello", "jira", "quickbooks")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("vendor", type=click.Choice(SANDBOXES))
@click.option("--port", default=8001, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--count", default=100, show_default=True)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def sandbox(vendor: str, port: int, seed: int, count: int, extra: tuple[str, ...]) -> None:
    """Run a vendor's sandbox (an emulator of its API) on 127.0.0.1 until Ctrl-C.

    It prints its base URL and the credentials to put in the config; options after the
    vendor's name that are not listed here go to the sandbox (e.g. --rate-limit 0.3).
    """
    import importlib

    try:
        module = importlib.import_module(f"connectors.{vendor}.sandbox")
    except ImportError as exc:
        _fail(f"the {vendor} sandbox is not installed: {exc}")
    module.main(["--port", str(port), "--seed", str(seed), "--count", str(count), *extra])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every network interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--public-url", metavar="URL",
              help="The address vendors call the hub at when it sits behind a proxy, e.g. "
                   "https://hub.example.com (webhook signatures cover the URL).")
@click.option("--no-auth", is_flag=True,
              help="Serve the dashboard without login (only allowed on 127.0.0.1).")
@pass_ctx
def serve(ctx: Ctx, host: str, port: int, public_url: str | None, no_auth: bool) -> None:
    """Serve the dashboard, its API, webhooks, /metrics and /healthz, until Ctrl-C.

    The dashboard needs HUB_DASHBOARD_TOKEN (or HUB_DASHBOARD_USER and
    HUB_DASHBOARD_PASSWORD) in the environment, unless --no-auth on 127.0.0.1.
    """
    import logging
    import os

    import uvicorn

    from hub.web.app import make_app
    from hub.web.trigger import FlowTrigger
    from hub.web.webhooks import webhook_systems

    if public_url and not public_url.startswith(("http://", "https://")):
        _fail(f"--public-url {public_url!r} must start with http:// or https://", EXIT_CONFIG)
    from hub.jobs.broker import is_shared
    from hub.web.auth import AuthConfig
    from hub.web.dashboard import Dashboard, run_now_trigger

    try:
        auth = AuthConfig.from_env(os.environ, no_auth=no_auth, host=host)
    except ValueError as exc:
        _fail(str(exc), EXIT_CONFIG)

    with _errors():
        settings, store = ctx.settings, ctx.long_running_store()
        # Before any metric exists: /metrics adds up this process's and the workers' files.
        from hub.metrics.multiproc import enable as share_metrics

        share_metrics(settings.file)
        send = None
        if is_shared(settings.broker_url):
            # Production mode: a webhook becomes a job for the workers; nothing runs here.
            from hub.jobs.actors import Jobs
            from hub.jobs.broker import make_broker

            jobs = Jobs(settings, store, make_broker(settings.broker_url))

            def enqueue(flow: str) -> object:
                return jobs.sync_flow.send(flow, "webhook", False, None)

            trigger = FlowTrigger(settings, store, run_flow=enqueue)
            send = jobs.sync_flow.send
        else:
            trigger = FlowTrigger(settings, store)
        runs = run_now_trigger(settings, store, send)
        dashboard = Dashboard(settings, store, auth, run_now=runs.enqueue,
                              public_url=public_url)
        app = make_app(settings, store, trigger, public_url=public_url, dashboard=dashboard)
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    systems = webhook_systems(settings)
    for system in systems:
        click.echo(f"{system}: POST {base}/webhooks/{system}")
    if not systems:
        click.echo("No connected system takes webhooks.")
    click.echo(f"Dashboard: {base}/ (API: {base}/api/v1/openapi.json)"
               + ("" if auth.enabled else " -- no login (--no-auth)"))
    click.echo(f"Health check: GET {base}/healthz")
    click.echo(f"Prometheus metrics: GET {base}/metrics")
    # Refused deliveries and webhook-triggered runs are what an operator watches here.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        trigger.close()
        runs.close()


# -- production mode ---------------------------------------------------------------------


@main.command()
@click.option("--processes", default=2, show_default=True, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per process.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              envvar="HUB_WORKER_METRICS_PORT", show_default=True,
              help="Also serve this host's worker metrics on this port (0: off; where "
                   "`hub serve` does not share $PROMETHEUS_MULTIPROC_DIR with the workers).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              envvar="HUB_WORKER_METRICS_HOST", help="Address of that metrics endpoint.")
@pass_ctx
def worker(ctx: Ctx, processes: int, threads: int, metrics_port: int,
           metrics_host: str) -> None:
    """Take sync jobs from the shared broker (the config's `broker: redis://...`).

    Stops gracefully on SIGTERM: jobs in hand finish or go back to the queue.
    """
    import os

    from hub.jobs.broker import is_shared
    from hub.metrics import exporter, multiproc

    with _errors():
        settings = ctx.settings
    if not is_shared(settings.broker_url):
        _fail("hub worker needs a shared broker: set `broker: redis://127.0.0.1:6379/0` in "
              f"{settings.file}; with the in-process default, `hub run` does everything in "
              "one process", EXIT_CONFIG)
    # The worker processes inherit the metrics folder (`hub serve` on this machine adds
    # their files up), chosen before any of them counts anything.
    multiproc.enable(settings.file)
    env = dict(os.environ, HUB_CONFIG=str(settings.file.resolve()))
    argv = [sys.executable, "-m", "dramatiq", "hub.jobs.worker", "--processes",
            str(processes), "--threads", str(threads), "--queues", "flows", "deliveries"]
    if metrics_port:
        env[exporter.ADDRESS_ENV] = f"{metrics_host}:{metrics_port}"
        argv += ["--fork-function", "hub.metrics.exporter:serve"]
    os.execve(sys.executable, argv, env)


def _until_stopped(stop: Any) -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1)


@main.command()
@pass_ctx
def scheduler(ctx: Ctx) -> None:
    """Fire flows on their cron schedules (one active scheduler; others stand by)."""
    import logging
    import threading

    from hub.jobs.actors import Jobs, send_sync
    from hub.jobs.broker import make_broker
    from hub.jobs.scheduler import Scheduler
    from hub.sync.lease import holder_id

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with _errors():
        settings = ctx.settings
        store = ctx.long_running_store()
        broker = make_broker(settings.broker_url)
        jobs = Jobs(settings, store, broker)
        sched = Scheduler(settings, store, send_sync(jobs), holder_id(),
                          sweep=jobs.send_sweep)
    stop = threading.Event()
    thread = threading.Thread(target=sched.serve, args=(stop,), daemon=True)
    thread.start()
    click.echo(f"Scheduler started for {len(settings.flows)} flows (stand-by until it leads).")
    _until_stopped(stop)
    thread.join(timeout=10)


@main.command("run")
@click.option("--threads", default=2, show_default=True, help="Worker threads.")
@pass_ctx
def run_cmd(ctx: Ctx, threads: int) -> None:
    """Run the hub in this process: schedules fire and jobs run here (embedded mode)."""
    import threading

    from hub.jobs.embedded import Embedded

    with _errors():
        hub = Embedded(ctx.settings, ctx.long_running_store(), threads=threads)
        tune_gc()
        hub.start()
    click.echo(f"Liaison is running {len(ctx.settings.flows)} flows on their schedules; "
               "Ctrl-C stops it.")
    stop = threading.Event()
    _until_stopped(stop)
    hub.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
