"""``flask --app wsgi …`` commands: users, demo data, the worker, the registry simulator, audit."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from ..models import Role
from ..services.errors import ServiceError

users_cli = AppGroup("users", help="Create users and API tokens.")
demo_cli = AppGroup("demo", help="Demo data for trying the portal.")
registry_cli = AppGroup("registry", help="The city registry (simulator for development).")
audit_cli = AppGroup("audit", help="The tamper-evident audit trail.")
invoices_cli = AppGroup("invoices", help="The ledger of issued invoices.")
outbox_cli = AppGroup("outbox", help="Deliveries to the registry: sweep, dead letters, retries.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.REVIEWER.value,
    show_default=True,
)
@click.option("--name", "display_name", default="")
@click.password_option(help="Prompted for when not given.")
def users_create(email: str, role: str, display_name: str, password: str) -> None:
    """Create a user; staff accounts are made only here."""
    from ..services import accounts

    try:
        user = accounts.create_user(email, password, role, display_name=display_name)
    except ServiceError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"created {user.role} {user.email} (id {user.id})")


@users_cli.command("token")
@click.option("--email", required=True)
@click.option("--name", default="api", show_default=True, help="What the token is for.")
def users_token(email: str, name: str) -> None:
    """Issue an API token for a user; it is printed once and stored only as a hash."""
    from ..services import accounts

    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user with e-mail {email}")
    click.echo(accounts.issue_api_token(user, name))


@users_cli.command("rotate-totp-key")
def users_rotate_totp_key() -> None:
    """Re-encrypt every TOTP secret with the first key of TOTP_ENCRYPTION_KEY.

    Rotate by putting the new key first and the old one after it ("new,old"), running this,
    then removing the old key.
    """
    from ..services import accounts

    click.echo(f"re-encrypted {accounts.rotate_totp_secrets()} TOTP secrets")


@demo_cli.command("seed")
@click.option("--invoices", default=300, show_default=True)
def demo_seed(invoices: int) -> None:
    """Create demo users and invoices; running it again changes nothing."""
    from ..services import demo

    summary = demo.seed(invoice_count=invoices)
    for line in summary:
        click.echo(line)


@registry_cli.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option("--storage", default=None, help="SQLite file for the simulator's records.")
def registry_simulate(host: str, port: int, storage: str | None) -> None:
    """Serve the registry simulator (the protocol of DESIGN.md §6)."""
    from ..registry.simulator import serve_simulator

    click.echo(f"registry simulator on http://{host}:{port}")
    serve_simulator(host, port, storage)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk the audit chain; exit 1 naming the first broken link."""
    from ..services import audit

    report = audit.verify_chain()
    if report.ok:
        click.echo(f"audit chain intact: {report.checked} events")
        return
    click.echo(
        f"audit chain BROKEN at event {report.broken_id}: {report.problem} "
        f"({report.checked} events verified before it)",
        err=True,
    )
    sys.exit(1)


@click.command("worker")
@click.option("--queues", "-q", multiple=True, help="Queues to serve (default: all).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--fork", is_flag=True, help="Fork a child per job (slower, isolates crashes).")
@click.option("--verbose", is_flag=True, help="Log every job (default: warnings only).")
def worker(queues: tuple[str, ...], burst: bool, fork: bool, verbose: bool) -> None:
    """Run an RQ worker (with its scheduler) inside the app context."""
    from rq import SimpleWorker, Worker

    from workers import queues as names
    from workers.ticker import Ticker

    from ..queue import get_queue, redis_connection, worker_connection

    # The worker's blocking dequeue on a connection of its own (RQ raises its read timeout to
    # outlast BLPOP); the jobs it runs use redis_connection(), whose timeouts stay short.
    dequeue = worker_connection()
    chosen = [get_queue(q, connection=dequeue) for q in (queues or names.ALL)]
    worker_class = Worker if fork else SimpleWorker
    w = worker_class(chosen, connection=dequeue)
    tickers: list[Ticker] = []
    if not burst:
        # Periodic jobs: (job, interval setting, name). Each runs once per period across all
        # workers on all hosts (see workers.ticker).
        schedule = [
            ("workers.maintenance.sweep", "OUTBOX_SWEEP_INTERVAL", "outbox-sweep"),
            ("workers.maintenance.monitor", "MONITOR_INTERVAL", "monitor"),
            ("workers.reconcile.run", "RECONCILE_INTERVAL", "reconcile"),
        ]
        tickers = [
            Ticker(
                redis_connection(),
                get_queue(names.MAINTENANCE),
                job,
                current_app.config[setting],
                name,
            )
            for job, setting, name in schedule
        ]
        for ticker in tickers:
            ticker.start()
    current_app.logger.info("worker serving %s", ", ".join(q.name for q in chosen))
    try:
        w.work(burst=burst, with_scheduler=True, logging_level="INFO" if verbose else "WARNING")
    finally:
        for ticker in tickers:
            ticker.stop()


@outbox_cli.command("sweep")
def outbox_sweep() -> None:
    """Take back expired leases and dispatch due deliveries that have no live job."""
    from ..services import outbox

    report = outbox.sweep()
    click.echo(
        f"leases reclaimed: {report.leases_reclaimed}; dispatched: {report.dispatched}; "
        f"breaker: {report.breaker}"
    )
    for note in report.notes:
        click.echo(note)


@outbox_cli.command("status")
def outbox_status() -> None:
    """Submissions by state and the registry breaker."""
    from ..services import outbox
    from ..services.registry_link import breaker

    for state, count in sorted(outbox.backlog_counts().items()):
        click.echo(f"{state:16} {count}")
    click.echo(f"breaker          {breaker().status().state}")


@outbox_cli.command("dead")
@click.option("--error-kind", default=None, help="Only this error kind (e.g. invalid, conflict).")
@click.option("--limit", default=50, show_default=True)
def outbox_dead(error_kind: str | None, limit: int) -> None:
    """List dead letters, newest first."""
    from ..services import outbox

    rows = outbox.dead_letters(error_kind, limit)
    for s in rows:
        click.echo(
            f"{s.id:>8}  {s.invoice.key:24} {s.attempts:>3} tries  "
            f"{s.last_error_kind or '':12} {s.last_error_message or ''}"
        )
    click.echo(f"{len(rows)} dead letter(s) shown")


@outbox_cli.command("retry")
@click.argument("submission_ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@click.option("--error-kind", default=None, help="With --all: only this error kind.")
def outbox_retry(submission_ids: tuple[int, ...], retry_all: bool, error_kind: str | None) -> None:
    """Retry dead letters by id, or all of them (optionally of one error kind)."""
    from ..services import outbox

    if retry_all:
        count = outbox.retry_dead_matching(error_kind, actor="cli")
    elif submission_ids:
        try:
            count = len(outbox.retry_dead(list(submission_ids), actor="cli"))
        except ServiceError as error:
            raise click.ClickException(str(error.message)) from None
    else:
        raise click.UsageError("give submission ids, or --all")
    click.echo(f"{count} dead letter(s) queued again")


@invoices_cli.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", default=500, show_default=True)
def invoices_import(csv_file: str, batch_size: int) -> None:
    """Import issued invoices from a CSV file (UTF-8 with or without BOM, or GB18030).

    Header: code,number,kind,issue_date,amount,tax,total,buyer_tax_id,buyer_name,seller_tax_id,
    check_code. Good rows are committed in batches; every bad row is reported with its line.
    """
    from pathlib import Path

    from ..services import intake

    data = Path(csv_file).read_bytes()
    lines = max(1, data.count(b"\n") - 1)
    with click.progressbar(length=lines, label="importing", file=sys.stderr) as bar:
        done = 0

        def progress(rows: int) -> None:
            nonlocal done
            bar.update(rows - done)
            done = rows

        try:
            report = intake.import_csv(data, actor="cli", batch_size=batch_size, progress=progress)
        except intake.ImportRefused as error:
            raise click.ClickException(str(error)) from None
    for line in intake.iter_rows(report):
        click.echo(line, err=True)
    click.echo(
        f"{report.rows} rows ({report.encoding}): {report.created} created, "
        f"{report.unchanged} unchanged, {report.conflicts} conflicts, "
        f"{report.invalid} invalid"
    )
    if report.problems:
        sys.exit(1)


def register(app: Flask) -> None:
    from .ops import backup_cli, data_cli
    from .reconcile import reconcile_cli

    for command in (reconcile_cli, backup_cli, data_cli):
        app.cli.add_command(command)
    for command in (users_cli, demo_cli, registry_cli, audit_cli, invoices_cli, outbox_cli, worker):
        app.cli.add_command(command)
