"""``flask --app wsgi reconcile …``: compare the ledger with the registry's listing."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

reconcile_cli = AppGroup("reconcile", help="Reconcile the ledger with the registry's listing.")


@reconcile_cli.command("run")
@click.option("--full", is_flag=True, help="Read the whole listing (finds missing invoices).")
def reconcile_run(full: bool) -> None:
    """Run a reconciliation (or resume an interrupted one) and print what it found.

    Exits 1 when another run holds the lock, and when the run stops on an error (the next
    invocation resumes it from its stored cursor).
    """
    from ..registry.client import RegistryError
    from ..services import reconcile

    bar = None
    listed = 0

    def progress(phase: str, done: int, total: int | None) -> None:
        nonlocal bar, listed
        if phase == "listing":
            if bar is None:
                label = "reading the registry listing"
                bar = click.progressbar(length=max(total or 0, 1), label=label, file=sys.stderr)
                bar.__enter__()
                bar.update(done)
            else:
                bar.update(done - listed)
            listed = done
        elif phase == "comparing" and bar is not None:
            bar.__exit__(None, None, None)
            bar = None
            click.echo(f"read {listed} registry records; comparing with the ledger", err=True)

    try:
        summary = reconcile.run(full=full, progress=progress, actor="cli")
    except reconcile.ReconcileBusy as busy:
        click.echo(f"refused: {busy.message}", err=True)
        sys.exit(1)
    except (RegistryError, reconcile.LeaseLost) as error:
        message = getattr(error, "message", None) or str(error)
        click.echo(
            f"reconciliation stopped: {message}; the next run resumes where it stopped",
            err=True,
        )
        sys.exit(1)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    _echo_summary(summary)


def _echo_summary(summary) -> None:
    how = "resumed and finished" if summary.resumed else "finished"
    click.echo(
        f"run #{summary.id} ({summary.kind}) {how} in {summary.duration_seconds:.1f} s: "
        f"{summary.registry_rows} registry records read, {summary.ledger_rows} ledger invoices "
        f"compared"
    )
    click.echo(
        f"missing at the registry: {summary.missing_at_registry} "
        f"({summary.resubmitted} resubmitted)"
    )
    click.echo(f"registered with different fields: {summary.mismatched}")
    click.echo(f"at the registry, unknown to the ledger: {summary.unknown_to_ledger}")


@reconcile_cli.command("status")
@click.option("--limit", default=10, show_default=True, help="How many runs to list.")
def reconcile_status(limit: int) -> None:
    """The latest runs, newest first, and the open findings by kind."""
    from ..services import reconcile

    runs = reconcile.recent_runs(limit)
    if not runs:
        click.echo("no reconciliation runs yet")
    for r in runs:
        took = f"{r.duration_seconds:.1f}s" if r.duration_seconds is not None else "-"
        click.echo(
            f"#{r.id:<6} {r.kind:11} {r.state:9} {r.started_at:%Y-%m-%d %H:%M:%S}Z {took:>8}  "
            f"registry {r.registry_rows}, ledger {r.ledger_rows}, "
            f"missing {r.missing_at_registry} (resubmitted {r.resubmitted}), "
            f"mismatched {r.mismatched}, unknown {r.unknown_to_ledger}"
            + (f"  error: {r.error}" if r.error else "")
        )
    counts = reconcile.open_finding_counts()
    click.echo(
        "open findings: "
        + ", ".join(f"{kind} {counts.get(kind, 0)}" for kind in ("missing", "mismatch", "unknown"))
    )
