"""``flask --app wsgi backup …`` and ``flask --app wsgi data …``: backups, retention, exports.

- ``backup create [--dest DIR] [--manifest-only]``: database dump + evidence files + manifest.
- ``backup verify PATH``: exit 1 naming every problem.
- ``backup restore-files PATH [--overwrite]``: the backup's evidence files back into storage.
- ``data purge [--dry-run] [--months N]``: delete the evidence of long-closed cases.
- ``data export --email E [--out FILE]``: a customer's own data as a ZIP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

backup_cli = AppGroup("backup", help="Back up the database and evidence files; verify backups.")
data_cli = AppGroup("data", help="Personal data: evidence retention and customers' exports.")


@backup_cli.command("create")
@click.option(
    "--dest",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to put the backup in (default: BACKUP_DIR, else instance/backups).",
)
@click.option(
    "--manifest-only",
    is_flag=True,
    help="Record the evidence files' hashes without copying them.",
)
def backup_create(dest: str | None, manifest_only: bool) -> None:
    """Dump the database (SQLite online backup or pg_dump) and copy the evidence files, with a
    manifest of hashes; prints the folder. Warnings about the source go to stderr."""
    from ..services import backup

    folder = dest or current_app.config.get("BACKUP_DIR")
    folder = folder or str(Path(current_app.instance_path) / "backups")
    try:
        result = backup.create(folder, include_files=not manifest_only)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None
    manifest = result.manifest
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    rows = sum(manifest["tables"].values())
    click.echo(
        f"{result.path}\n"
        f"  database: {manifest['database']['dialect']} ({manifest['database']['tool']}), "
        f"{len(manifest['tables'])} tables, {rows} rows, {manifest['database']['size']} bytes\n"
        f"  files: {len(manifest['files'])} "
        f"{'copied' if manifest['files_included'] else 'listed (not copied)'}, "
        f"{len(manifest['missing_files'])} missing, "
        f"{manifest['purged_uploads']} upload(s) purged by retention"
    )


@backup_cli.command("verify")
@click.argument("path", type=click.Path(exists=True))
def backup_verify(path: str) -> None:
    """Check a backup folder: hashes, the dump opens, every file is there and intact.
    Exits 1 when anything is wrong."""
    from ..services import backup

    report = backup.verify(path)
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.ok:
        click.echo(
            f"backup OK: {report.path} ({report.dialect}, {report.files_checked} files checked)"
        )
        return
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    click.echo(f"backup BROKEN: {len(report.problems)} problem(s) in {report.path}", err=True)
    sys.exit(1)


@backup_cli.command("restore-files")
@click.argument("path", type=click.Path(exists=True))
@click.option("--overwrite", is_flag=True, help="Replace files already in storage.")
def backup_restore_files(path: str, overwrite: bool) -> None:
    """Put a backup's evidence files into the configured storage (the local folder or the
    shared bucket), each checked against the manifest first. Exits 1 on any problem."""
    from ..services import backup

    report = backup.restore_files(path, overwrite=overwrite)
    click.echo(
        f"{report.restored} file(s) restored, {report.skipped} already in storage "
        f"({current_app.config['EVIDENCE_STORAGE']})"
    )
    if not report.ok:
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}", err=True)
        sys.exit(1)


@data_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option(
    "--months",
    type=click.IntRange(min=1),
    default=None,
    help="Closed more than this many months ago (default: EVIDENCE_RETENTION_MONTHS, 24).",
)
@click.option("--verbose", "-v", is_flag=True, help="List every upload.")
def data_purge(dry_run: bool, months: int | None, verbose: bool) -> None:
    """Delete the evidence files of cases closed longer ago than the retention period; the
    cases, the upload records and the audit trail are kept."""
    from ..services import privacy

    report = privacy.purge_evidence(months, dry_run=dry_run, actor="cli")
    if verbose:
        for item in report.uploads:
            click.echo(
                f"{item.case_reference:16} upload {item.upload_id:>8}  "
                f"{item.present}/{len(item.keys)} file(s) {item.bytes:>12} bytes"
            )
    click.echo(report.summary())


@data_cli.command("export")
@click.option("--email", required=True, help="The customer's account e-mail.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="ZIP file to write (default: data-<user id>.zip here).",
)
def data_export(email: str, out: str | None) -> None:
    """Write a customer's own data (account, cases, evidence, links, ratings) as a ZIP."""
    from ..services import accounts, privacy

    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user with e-mail {email}")
    target = Path(out or f"data-{user.id}.zip")
    if target.exists():
        raise click.ClickException(f"{target} exists; choose another --out")
    partial = target.with_name(f".{target.name}.part")
    # Personal data: readable by the operator only, from the first byte.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            summary = privacy.write_customer_data(user, handle, actor="cli")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(
        f"{target}: {summary.cases} case(s), {summary.files} file(s), "
        f"{summary.bytes_of_files} bytes of evidence"
        + (f"; {summary.missing_files} file(s) missing" if summary.missing_files else "")
    )
