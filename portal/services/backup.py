"""Backups of the database and the evidence files, and the check that a backup is whole.

:func:`create` makes one folder, ``portal-backup-YYYYMMDDTHHMMSSZ``, holding:

- the database: ``database.sqlite3`` made with SQLite's online backup API (a consistent copy
  while the portal keeps running; switched to rollback-journal mode so it is one
  self-contained file), or ``database.pgdump`` made by ``pg_dump --format=custom``. The
  password comes from the URL and reaches ``pg_dump`` only through ``PGPASSWORD`` in its
  environment, never its command line. The ``pg_dump`` used has the server's major version
  (or a newer one), found on PATH, in ``/usr/lib/postgresql/*/bin`` or in ``PG_BINDIR``;
- ``files/<storage key>``: a copy of every evidence file (original, preview, thumbnail) that
  the database names, unless ``include_files=False`` (then only their hashes are recorded);
- ``manifest.json``, written last: when, the dialect and server version, the dump's SHA-256
  and size, the Alembic revision, the row count of every table, and every file with its
  upload, role, size and SHA-256 (plus the files the database names that were missing).

The table counts and the file list come from the very snapshot that was dumped (SQLite: the
copy itself; PostgreSQL: a REPEATABLE READ transaction whose exported snapshot ``pg_dump``
uses), so the manifest always agrees with the dump. The folder is built under a temporary
name and renamed into place when complete: a half-made backup never looks like a backup.
It is made readable by its owner only (it holds personal data).

:func:`verify` recomputes the hashes, opens the dump (SQLite: ``PRAGMA integrity_check`` and
the row counts, on a copy; PostgreSQL: ``pg_restore --list`` for the table of contents and a
full ``pg_restore`` to /dev/null that reads every data block), checks every file in the
manifest and reports each problem in one line.

Public API:

- ``BackupError``: a backup could not be made (the message says why).
- ``BackupResult(path, manifest, warnings)``
- ``create(dest_dir, now=None, *, include_files=True) -> BackupResult``
- ``VerifyReport(path, problems, notes, files_checked, dialect)`` with ``ok``
- ``verify(path) -> VerifyReport``
- ``RestoreReport(path, restored, skipped, problems)`` with ``ok``
- ``restore_files(path, overwrite=False) -> RestoreReport``: the backup's evidence files put
  back into the configured storage (local folder or shared bucket), each checked first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import URL

from ..extensions import db
from ..models import UploadState, utcnow
from ..scans.storage import is_valid_key

FORMAT = 1
MANIFEST = "manifest.json"
FILES_DIR = "files"
SQLITE_DUMP = "database.sqlite3"
PG_DUMP = "database.pgdump"
_CHUNK = 1024 * 1024
_ROLES = ("original", "preview", "thumbnail")


class BackupError(Exception):
    """A backup could not be made; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: its folder, its manifest and what looked wrong at the source."""

    path: Path
    manifest: dict
    warnings: list[str]


@dataclass
class VerifyReport:
    """What :func:`verify` found: problems (the backup is not usable as it is) and notes."""

    path: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_checked: int = 0
    dialect: str | None = None

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


# --------------------------------------------------------------------------- helpers


def _hash_file(source: Path, copy_to: Path | None = None) -> tuple[str, int]:
    """SHA-256 and size of ``source``, copying it to ``copy_to`` on the way if given."""
    with source.open("rb") as reader:
        return _hash_stream(reader, copy_to)


def _hash_stream(reader, copy_to: Path | None = None) -> tuple[str, int]:
    """SHA-256 and size of what ``reader`` holds, read in chunks (copied to ``copy_to``)."""
    digest = hashlib.sha256()
    size = 0
    with contextlib.ExitStack() as stack:
        writer = None
        if copy_to is not None:
            copy_to.parent.mkdir(parents=True, exist_ok=True)
            writer = stack.enter_context(copy_to.open("wb"))
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if writer is not None:
                writer.write(chunk)
        if writer is not None:
            writer.flush()
            os.fsync(writer.fileno())
    return digest.hexdigest(), size


def _tool_version(path: Path) -> tuple[int, str] | None:
    try:
        result = subprocess.run(  # noqa: S603 - a PostgreSQL client found by us, no shell
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.(\d+))?", result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return int(match.group(1)), result.stdout.strip()


def pg_tool(name: str, minimum_major: int) -> tuple[Path, int, str]:
    """The PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``) to use with major
    version ``minimum_major``: that very major if installed, else the oldest newer one.

    Looks in ``PG_BINDIR`` (a setting), on PATH and in ``/usr/lib/postgresql/*/bin``.
    Returns ``(path, major, version text)``; raises BackupError when none will do.
    """
    candidates: list[Path] = []
    bindir = current_app.config.get("PG_BINDIR")
    if bindir:
        candidates.append(Path(bindir) / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")))
    found: dict[int, tuple[Path, int, str]] = {}
    for candidate in candidates:
        version = _tool_version(candidate)
        if version is not None:
            found.setdefault(version[0], (candidate, *version))
    usable = sorted(major for major in found if major >= minimum_major)
    if not usable:
        have = ", ".join(f"{v[2]} ({v[0]})" for v in found.values()) or "none"
        raise BackupError(
            f"no {name} for PostgreSQL {minimum_major} or newer (found: {have}); install "
            f"postgresql-client-{minimum_major} or set PG_BINDIR"
        )
    return found[usable[0]]


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it."""
    env = dict(os.environ)
    query = dict(url.query)
    password = url.password or query.pop("password", None)
    query = {k: v for k, v in query.items() if k.lower() != "password"}
    if password:
        env["PGPASSWORD"] = str(password)
    env.setdefault("PGAPPNAME", "portal-backup")
    # URL.set(password=None) would keep the password ("None" means "unchanged" there).
    clean = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=query,
    )
    return clean.render_as_string(hide_password=False), env


# --------------------------------------------------------------------------- database dumps


def _sqlite_contents(path: Path) -> tuple[dict[str, int], list[dict], str | None]:
    """Row counts, the uploads' files and the Alembic revision, read from a SQLite file."""
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        tables = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            tables[name] = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # noqa: S608
        uploads = []
        if "uploads" in tables:
            rows = conn.execute(
                "SELECT id, storage_key, preview_key, thumbnail_key, sha256, size_bytes, "
                "state FROM uploads ORDER BY id"
            )
            uploads = [_upload_row(*row) for row in rows]
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    return tables, uploads, revision


def _upload_row(upload_id, storage_key, preview_key, thumbnail_key, sha256, size, state):
    return {
        "id": upload_id,
        "keys": dict(zip(_ROLES, (storage_key, preview_key, thumbnail_key), strict=True)),
        "sha256": sha256,
        "size": size,
        "purged": state == UploadState.PURGED,
    }


def _dump_sqlite(work: Path) -> tuple[dict, dict[str, int], list[dict]]:
    database = db.engine.url.database
    if not database or database == ":memory:" or db.engine.url.query.get("mode") == "memory":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    source_path = Path(database)
    if not source_path.is_file():
        raise BackupError(f"the SQLite database {source_path} does not exist")
    target = work / SQLITE_DUMP
    with (
        contextlib.closing(sqlite3.connect(source_path, timeout=30)) as source,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)  # one step: a consistent snapshot; WAL lets writers carry on
        copy.execute("PRAGMA journal_mode = DELETE").fetchall()
        copy.commit()
    tables, uploads, revision = _sqlite_contents(target)
    version = sqlite3.sqlite_version
    info = {"dialect": "sqlite", "server_version": version, "tool": f"sqlite3 {version}"}
    return {**info, "file": SQLITE_DUMP, "alembic_revision": revision}, tables, uploads


def _dump_postgresql(work: Path) -> tuple[dict, dict[str, int], list[dict]]:
    target = work / PG_DUMP
    url = db.engine.url
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            server_num = int(conn.scalar(text("SHOW server_version_num")))
            server_version = conn.scalar(text("SHOW server_version"))
            snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
            names = conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                    "ORDER BY table_name"
                )
            ).all()
            quote = conn.dialect.identifier_preparer.quote
            tables = {
                name: conn.scalar(text(f"SELECT count(*) FROM {quote(name)}"))  # noqa: S608
                for name in names
            }
            uploads = []
            if "uploads" in tables:
                rows = conn.execute(
                    text(
                        "SELECT id, storage_key, preview_key, thumbnail_key, sha256, size_bytes, "
                        "state FROM uploads ORDER BY id"
                    )
                )
                uploads = [_upload_row(*row) for row in rows]
            revision = None
            if "alembic_version" in tables:
                revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
            tool, major, tool_version = pg_tool("pg_dump", server_num // 10000)
            dsn, env = _libpq(url)
            # The exported snapshot lives as long as this transaction: dump while it is open.
            result = subprocess.run(  # noqa: S603 - no shell; the password is in env only
                [
                    str(tool),
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={dsn}",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BackupError(f"pg_dump failed: {result.stderr.strip() or result.returncode}")
    info = {
        "dialect": "postgresql",
        "server_version": server_version,
        "tool": tool_version,
        "tool_major": major,
        "file": PG_DUMP,
        "alembic_revision": revision,
    }
    return info, tables, uploads


# --------------------------------------------------------------------------- create


def _backup_name(dest: Path, now: datetime) -> Path:
    base = f"portal-backup-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    candidate, n = dest / base, 1
    while candidate.exists():
        n += 1
        candidate = dest / f"{base}-{n}"
    return candidate


def _portal_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("invoice-reentry-portal")
    except PackageNotFoundError:
        return None


def _files(uploads: list[dict], work: Path, include_files: bool) -> tuple[list, list, list, int]:
    from .evidence import storage

    store = storage()
    entries: list[dict] = []
    missing: list[dict] = []
    warnings: list[str] = []
    purged = 0
    for upload in uploads:
        if upload["purged"]:
            purged += 1
            continue
        for role, key in upload["keys"].items():
            if not key:
                continue
            if not is_valid_key(key):
                warnings.append(f"upload {upload['id']}: {role} key {key!r} is not a storage key")
                continue
            try:
                source = store.open(key)
            except FileNotFoundError:
                missing.append({"key": key, "upload_id": upload["id"], "role": role})
                warnings.append(f"upload {upload['id']}: {role} file {key} is missing")
                continue
            copy_to = work / FILES_DIR / key if include_files else None
            with source:
                digest, size = _hash_stream(source, copy_to)
            entries.append(
                {
                    "key": key,
                    "upload_id": upload["id"],
                    "role": role,
                    "size": size,
                    "sha256": digest,
                }
            )
            if role == "original" and digest != upload["sha256"]:
                warnings.append(
                    f"upload {upload['id']}: original {key} does not match the SHA-256 recorded "
                    "when it was uploaded (changed or damaged in storage)"
                )
    return entries, missing, warnings, purged


def create(dest_dir, now: datetime | None = None, *, include_files: bool = True) -> BackupResult:
    """Back up the database and the evidence files into a new folder under ``dest_dir``.

    ``include_files=False`` records the files' hashes without copying them (for storage that
    is backed up on its own). Returns the folder, its manifest and warnings about the source
    (files the database names that are missing or no longer match their recorded hash).
    Raises BackupError when the backup cannot be made; nothing half-made is left behind.
    """
    from .evidence import storage

    store = storage()
    now = now or utcnow()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    final = _backup_name(dest, now)
    work = dest / f".tmp-{final.name}-{secrets.token_hex(4)}"
    work.mkdir(mode=0o700)
    try:
        dialect = db.engine.dialect.name
        if dialect == "sqlite":
            database, tables, uploads = _dump_sqlite(work)
        elif dialect == "postgresql":
            database, tables, uploads = _dump_postgresql(work)
        else:
            raise BackupError(f"backups of {dialect} databases are not supported")
        dump = work / database["file"]
        database["sha256"], database["size"] = _hash_file(dump)
        entries, missing, warnings, purged = _files(uploads, work, include_files)
        manifest = {
            "format": FORMAT,
            "kind": "invoice-reentry-portal backup",
            "created_at": now.astimezone(UTC).isoformat(),
            "portal_version": _portal_version(),
            "database": database,
            "tables": tables,
            "storage": store.location,
            "upload_dir": str(store.root) if hasattr(store, "root") else None,
            "files_included": include_files,
            "files": entries,
            "missing_files": missing,
            "purged_uploads": purged,
            "warnings": warnings,
        }
        with (work / MANIFEST).open("w", encoding="utf-8") as out:
            json.dump(manifest, out, ensure_ascii=False, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(path=final, manifest=manifest, warnings=warnings)


# --------------------------------------------------------------------------- verify


def _sqlite_length_problem(dump: Path) -> str | None:
    """SQLite reads a short file as if zero-padded, so a cut through free pages can pass
    ``integrity_check``: compare the file's length with the size its header records."""
    with dump.open("rb") as handle:
        header = handle.read(100)
    size = dump.stat().st_size
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return "database: the dump is not a SQLite database file"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    if size % page_size or (header_valid and size != pages * page_size):
        expected = f"{pages} pages of {page_size} bytes" if header_valid else "whole pages"
        return f"database: the dump has {size} bytes but its header says {expected} (truncated)"
    return None


def _check_sqlite(dump: Path, manifest: dict, report: VerifyReport) -> None:
    problem = _sqlite_length_problem(dump)
    if problem:
        report.problems.append(problem)
    with tempfile.TemporaryDirectory(prefix="portal-verify-") as scratch:
        copy = Path(scratch) / SQLITE_DUMP
        shutil.copyfile(dump, copy)
        try:
            with contextlib.closing(sqlite3.connect(copy)) as conn:
                rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as error:
            report.problems.append(f"database: the SQLite dump does not open: {error}")
            return
        if rows != ["ok"]:
            lines = [ln for row in rows for ln in str(row).splitlines() if not ln.startswith("***")]
            shown = "; ".join(lines[:5])
            report.problems.append(f"database: integrity_check failed: {shown}")
            return
        try:
            tables, _uploads, revision = _sqlite_contents(copy)
        except sqlite3.DatabaseError as error:
            report.problems.append(f"database: the SQLite dump cannot be read: {error}")
            return
    _compare_tables(tables, manifest, report)
    expected = manifest.get("database", {}).get("alembic_revision")
    if revision != expected:
        report.problems.append(
            f"database: Alembic revision {revision!r}, the manifest says {expected!r}"
        )


def _compare_tables(found: dict[str, int], manifest: dict, report: VerifyReport) -> None:
    for name, count in sorted((manifest.get("tables") or {}).items()):
        if name not in found:
            report.problems.append(f"database: table {name} is missing from the dump")
        elif found[name] != count:
            report.problems.append(
                f"database: table {name} has {found[name]} rows, the manifest says {count}"
            )


def _check_postgresql(dump: Path, manifest: dict, report: VerifyReport) -> None:
    major = int(manifest.get("database", {}).get("tool_major") or 0)
    try:
        tool, _major, _version = pg_tool("pg_restore", major)
    except BackupError as error:
        report.problems.append(f"database: {error}")
        return
    listing = subprocess.run(  # noqa: S603 - no shell, our own file
        [str(tool), "--list", str(dump)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        message = listing.stderr.strip().splitlines()[-1:] or [f"exit {listing.returncode}"]
        report.problems.append(f"database: pg_restore --list failed: {message[0]}")
        return
    dumped = set(re.findall(r"TABLE DATA \S+ (\S+) ", listing.stdout))
    for name in sorted(manifest.get("tables") or {}):
        if name not in dumped:
            report.problems.append(f"database: table {name} has no data in the dump")
    # --list reads only the table of contents; a full restore to nowhere reads every block.
    full = subprocess.run(  # noqa: S603 - no shell, our own file
        [str(tool), f"--file={os.devnull}", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if full.returncode != 0:
        message = full.stderr.strip().splitlines()[-1:] or [f"exit {full.returncode}"]
        report.problems.append(f"database: the dump cannot be read to the end: {message[0]}")
    report.notes.append("row counts are checked only by restoring a PostgreSQL dump")


def _check_files(root: Path, manifest: dict, report: VerifyReport) -> None:
    entries = manifest.get("files") or []
    if not manifest.get("files_included", True):
        report.notes.append(f"files not included: {len(entries)} listed with their hashes only")
        return
    listed = set()
    for entry in entries:
        key = entry.get("key")
        if not is_valid_key(key):
            report.problems.append(f"files: manifest entry {key!r} is not a storage key")
            continue
        listed.add(key)
        path = root / FILES_DIR / key
        if not path.is_file():
            report.problems.append(f"files: {key} (upload {entry.get('upload_id')}) is missing")
            continue
        digest, size = _hash_file(path)
        report.files_checked += 1
        if size != entry.get("size"):
            report.problems.append(
                f"files: {key} has {size} bytes, the manifest says {entry.get('size')}"
            )
        elif digest != entry.get("sha256"):
            report.problems.append(f"files: {key} does not match its SHA-256 (changed or damaged)")
    folder = root / FILES_DIR
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = path.relative_to(folder).as_posix()
            if key not in listed:
                report.problems.append(f"files: {key} is not in the manifest")


def verify(path) -> VerifyReport:
    """Check the backup at ``path`` (its folder or its manifest) and report every problem.

    Recomputes the dump's and every file's SHA-256 and size, opens the dump (SQLite: integrity
    check and row counts on a copy; PostgreSQL: ``pg_restore --list`` and a full read), and
    flags files missing from, or not listed in, the manifest. The backup is never modified.
    """
    root = Path(path)
    if root.is_file() and root.name == MANIFEST:
        root = root.parent
    report = VerifyReport(path=root)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        report.problems.append(f"{manifest_path} does not exist (not a backup, or unfinished)")
        return report
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        report.problems.append(f"manifest.json is not valid JSON: {error}")
        return report
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        report.problems.append(f"manifest.json is not a format-{FORMAT} portal backup manifest")
        return report
    database = manifest.get("database") or {}
    report.dialect = database.get("dialect")
    name = database.get("file") or ""
    dump = root / name
    if not name or Path(name).name != name or not dump.is_file():
        report.problems.append(f"database: dump file {name!r} is missing")
    else:
        digest, size = _hash_file(dump)
        if size != database.get("size"):
            report.problems.append(
                f"database: {name} has {size} bytes, the manifest says {database.get('size')} "
                "(truncated or replaced)"
            )
        elif digest != database.get("sha256"):
            report.problems.append(f"database: {name} does not match its SHA-256")
        if report.dialect == "sqlite":
            _check_sqlite(dump, manifest, report)
        elif report.dialect == "postgresql":
            _check_postgresql(dump, manifest, report)
        else:
            report.problems.append(f"database: unknown dialect {report.dialect!r}")
    _check_files(root, manifest, report)
    for warning in manifest.get("warnings") or []:
        report.notes.append(f"at creation: {warning}")
    return report


# --------------------------------------------------------------------------- restore files


@dataclass
class RestoreReport:
    """What :func:`restore_files` did: files stored, files already there, and problems."""

    path: Path
    restored: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file of the backup is now in storage."""
        return not self.problems


def restore_files(path, *, overwrite: bool = False) -> RestoreReport:
    """Put the evidence files of the backup at ``path`` back into this app's storage.

    Works the same for the local folder and the shared bucket (so no ``cp`` or bucket tool is
    needed). Each file is hashed first and stored only if it matches its manifest entry; a
    file already in storage under its key is left alone unless ``overwrite``. Run it after
    restoring the database, with the portal stopped; running it again stores nothing twice.
    """
    from .evidence import storage

    root = Path(path)
    if root.is_file() and root.name == MANIFEST:
        root = root.parent
    report = RestoreReport(path=root)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        report.problems.append(f"{root / MANIFEST}: not a readable backup manifest ({error})")
        return report
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        report.problems.append(f"manifest.json is not a format-{FORMAT} portal backup manifest")
        return report
    if not manifest.get("files_included", True):
        report.problems.append("this backup holds no files (made with --manifest-only)")
        return report
    store = storage()
    for entry in manifest.get("files") or []:
        key = entry.get("key")
        if not is_valid_key(key):
            report.problems.append(f"files: manifest entry {key!r} is not a storage key")
            continue
        copy = root / FILES_DIR / key
        if not copy.is_file():
            report.problems.append(f"files: {key} is missing from the backup")
            continue
        if _hash_file(copy) != (entry.get("sha256"), entry.get("size")):
            report.problems.append(f"files: {key} does not match its manifest entry; not restored")
            continue
        if not overwrite and store.exists(key):
            report.skipped += 1
            continue
        with copy.open("rb") as source:
            stored = store.put(key, source)
        if stored.sha256 != entry.get("sha256"):  # the file changed while it was being read
            store.delete(key)
            report.problems.append(f"files: {key} changed while it was restored; not restored")
            continue
        report.restored += 1
    return report
