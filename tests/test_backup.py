"""Backups: create and verify on the suite's own database (SQLite or PostgreSQL), and the
damage verify must find: a changed evidence file, a truncated dump, a missing or stray file."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.cli.ops import backup_cli
from portal.extensions import db
from portal.models import AuditEvent, Case, Upload, User
from portal.scans.fingerprints import sha256_hex
from portal.services import backup, evidence, privacy
from tests.factories import case_with_evidence

pytestmark = pytest.mark.storage_backends  # each test once on the local folder, once on S3


@pytest.fixture
def data(ctx):
    """Two customers' cases with evidence (one upload still waiting for its preview), one old
    closed case whose evidence was purged."""
    case_with_evidence("kehu@example.com", files=2)
    case_with_evidence("other@example.com", derived=False)
    case_with_evidence("old@example.com", closed_days_ago=800)
    privacy.purge_evidence(24)
    return ctx


def _made(app_dialect: str, result: backup.BackupResult) -> dict:
    manifest = json.loads((result.path / backup.MANIFEST).read_text())
    assert manifest == result.manifest
    assert manifest["database"]["dialect"] == app_dialect
    return manifest


def test_create_and_verify_on_the_suites_database(data, tmp_path):
    dialect = db.engine.dialect.name
    now = datetime(2026, 5, 2, 3, 4, 5, tzinfo=UTC)
    result = backup.create(tmp_path / "backups", now=now)

    assert result.path.name == "portal-backup-20260502T030405Z"
    assert (result.path.stat().st_mode & 0o077) == 0  # personal data: the owner only
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [result.path.name]
    manifest = _made(dialect, result)
    assert manifest["created_at"] == "2026-05-02T03:04:05+00:00"
    dump = result.path / manifest["database"]["file"]
    assert dump.name == ("database.sqlite3" if dialect == "sqlite" else "database.pgdump")
    assert manifest["database"]["size"] == dump.stat().st_size
    # Counts from the dumped snapshot itself.
    for model in (User, Case, Upload, AuditEvent):
        count = db.session.scalar(select(func.count()).select_from(model))
        assert manifest["tables"][model.__tablename__] == count
    assert manifest["database"]["alembic_revision"]
    # Every live file, with its hash; the purged upload's files are not expected.
    uploads = db.session.scalars(select(Upload).order_by(Upload.id)).all()
    live = [u for u in uploads if not u.is_purged]
    expected = {
        k for u in live for k in (u.storage_key, u.preview_key, u.thumbnail_key) if k is not None
    }
    assert {e["key"] for e in manifest["files"]} == expected and len(expected) == 7
    originals = {e["upload_id"]: e["sha256"] for e in manifest["files"] if e["role"] == "original"}
    assert originals == {u.id: u.sha256 for u in live}
    assert manifest["purged_uploads"] == 1 and manifest["missing_files"] == []
    assert result.warnings == []
    store = evidence.storage()
    for key in expected:
        assert (result.path / "files" / key).read_bytes() == store.read(key)

    report = backup.verify(result.path)
    assert report.ok, report.problems
    assert report.files_checked == 7 and report.dialect == dialect
    assert backup.verify(result.path / backup.MANIFEST).ok  # the manifest's path works too


def test_the_commands(app, runner, tmp_path):
    app.cli.add_command(backup_cli)
    with app.app_context():
        case_with_evidence("kehu@example.com")
    made = runner.invoke(args=["backup", "create", "--dest", str(tmp_path / "b")])
    assert made.exit_code == 0, made.output
    folder = Path(made.output.splitlines()[0])
    assert folder.parent == tmp_path / "b" and "3 copied, 0 missing" in made.output
    checked = runner.invoke(args=["backup", "verify", str(folder)])
    assert checked.exit_code == 0 and "backup OK" in checked.output
    key = json.loads((folder / "manifest.json").read_text())["files"][0]["key"]
    (folder / "files" / key).write_bytes(b"tampered")
    broken = runner.invoke(args=["backup", "verify", str(folder)])
    assert broken.exit_code == 1
    assert f"PROBLEM: files: {key} has 8 bytes" in broken.output
    assert "backup BROKEN: 1 problem(s)" in broken.output


def test_a_changed_or_missing_file_and_a_stray_one_are_found(data, tmp_path):
    result = backup.create(tmp_path)
    first, second, third = (e["key"] for e in result.manifest["files"][:3])
    path = result.path / "files" / first
    path.write_bytes(bytes([path.read_bytes()[0] ^ 1]) + path.read_bytes()[1:])  # same size
    (result.path / "files" / second).unlink()
    stray = result.path / "files" / "ff" / "ff" / ("f" * 32)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not ours")

    report = backup.verify(result.path)

    assert not report.ok
    assert report.problems == [
        f"files: {first} does not match its SHA-256 (changed or damaged)",
        f"files: {second} (upload {result.manifest['files'][1]['upload_id']}) is missing",
        f"files: ff/ff/{'f' * 32} is not in the manifest",
    ]
    assert third  # the others were fine


def _truncate(path: Path, cut: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: -(cut or len(data) // 3)])


def test_a_truncated_dump_is_found(data, tmp_path):
    result = backup.create(tmp_path)
    dump = result.path / result.manifest["database"]["file"]
    _truncate(dump)
    report = backup.verify(result.path)
    assert not report.ok
    assert report.problems[0].startswith(f"database: {dump.name} has ")
    assert "(truncated or replaced)" in report.problems[0]
    assert len(report.problems) >= 2  # and the dump itself no longer reads


@pytest.mark.parametrize("cut", [100, None], ids=["last-100-bytes", "a-third"])
def test_a_truncated_dump_is_found_even_with_a_matching_manifest(data, tmp_path, cut):
    """The structural check alone (integrity_check / a full pg_restore read) catches it."""
    result = backup.create(tmp_path)
    dump = result.path / result.manifest["database"]["file"]
    _truncate(dump, cut)
    manifest = result.manifest
    manifest["database"]["sha256"], manifest["database"]["size"] = backup._hash_file(dump)
    (result.path / backup.MANIFEST).write_text(json.dumps(manifest))
    report = backup.verify(result.path)
    assert not report.ok
    assert all(p.startswith("database: ") for p in report.problems), report.problems


def test_a_missing_or_foreign_manifest_is_reported(tmp_path):
    assert "does not exist" in backup.verify(tmp_path).problems[0]
    (tmp_path / "manifest.json").write_text("{not json")
    assert "not valid JSON" in backup.verify(tmp_path).problems[0]
    (tmp_path / "manifest.json").write_text('{"format": 99}')
    assert "not a format-1" in backup.verify(tmp_path).problems[0]
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": 1, "database": {"dialect": "sqlite", "file": "../etc/passwd"}})
    )
    assert backup.verify(tmp_path).problems == ["database: dump file '../etc/passwd' is missing"]


def test_manifest_only_lists_hashes_without_copies(data, tmp_path):
    result = backup.create(tmp_path, include_files=False)
    assert not (result.path / "files").exists()
    assert result.manifest["files_included"] is False and len(result.manifest["files"]) == 7
    report = backup.verify(result.path)
    assert report.ok and any("files not included: 7 listed" in n for n in report.notes)


def test_missing_and_damaged_source_files_are_warned_about(data, tmp_path):
    upload = db.session.scalars(select(Upload).order_by(Upload.id)).first()
    store = evidence.storage()
    store.put(upload.storage_key, b"damaged in storage")
    store.delete(upload.preview_key)
    result = backup.create(tmp_path)
    assert result.warnings == [
        f"upload {upload.id}: original {upload.storage_key} does not match the SHA-256 recorded "
        "when it was uploaded (changed or damaged in storage)",
        f"upload {upload.id}: preview file {upload.preview_key} is missing",
    ]
    assert result.manifest["missing_files"] == [
        {"key": upload.preview_key, "upload_id": upload.id, "role": "preview"}
    ]
    report = backup.verify(result.path)
    assert report.ok  # the backup holds faithfully what there was; the notes say what was wrong
    assert sum(n.startswith("at creation: ") for n in report.notes) == 2


def test_an_in_memory_database_is_refused(app_factory, tmp_path):
    app = app_factory(SQLALCHEMY_DATABASE_URI="sqlite://")
    with app.app_context(), pytest.raises(backup.BackupError, match="in-memory"):
        backup.create(tmp_path / "b")
    assert list((tmp_path / "b").iterdir()) == []  # nothing half-made left behind


def test_the_password_reaches_pg_dump_only_through_its_environment():
    url = make_url("postgresql+psycopg://portal:s3cret@db.example:5433/portal?sslmode=require")
    dsn, env = backup._libpq(url)
    assert "s3cret" not in dsn and env["PGPASSWORD"] == "s3cret"
    assert dsn == "postgresql://portal@db.example:5433/portal?sslmode=require"
    dsn, env = backup._libpq(make_url("postgresql://u@h/d?password=p4ss"))
    assert "p4ss" not in dsn and env["PGPASSWORD"] == "p4ss"


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="no pg_dump")
def test_a_pg_dump_older_than_the_server_is_refused(ctx):
    with pytest.raises(backup.BackupError, match="no pg_dump for PostgreSQL 99 or newer"):
        backup.pg_tool("pg_dump", 99)


def test_a_backup_restores(data, tmp_path):
    """The README's restore steps bring back the same rows."""
    result = backup.create(tmp_path)
    dump = result.path / result.manifest["database"]["file"]
    tables = result.manifest["tables"]
    if db.engine.dialect.name == "sqlite":
        restored_url = f"sqlite:///{shutil.copy(dump, tmp_path / 'restored.db')}"
        _compare(restored_url, tables)
        return
    name = f"restore_{uuid.uuid4().hex[:12]}"
    url = db.engine.url
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        tool, _major, _v = backup.pg_tool("pg_restore", result.manifest["database"]["tool_major"])
        dsn, env = backup._libpq(url.set(database=name))
        subprocess.run(
            [str(tool), "--no-owner", "--exit-on-error", f"--dbname={dsn}", str(dump)],
            env=env,
            check=True,
            capture_output=True,
        )
        _compare(url.set(database=name).render_as_string(hide_password=False), tables)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _compare(url: str, tables: dict[str, int]) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table, count in tables.items():
                assert conn.scalar(text(f'SELECT count(*) FROM "{table}"')) == count, table
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- restoring files


def test_restore_files_puts_a_backups_files_back_into_storage(data, tmp_path, storage_backend):
    result = backup.create(tmp_path / "b")
    assert result.manifest["storage"] == evidence.storage().location
    assert result.manifest["storage"].startswith("s3://" if storage_backend == "s3" else "file:")
    store = evidence.storage()
    files = {e["key"]: e["sha256"] for e in result.manifest["files"]}
    for key in files:
        store.delete(key)
    assert not any(store.exists(k) for k in files)

    report = backup.restore_files(result.path)

    assert report.ok, report.problems
    assert (report.restored, report.skipped) == (7, 0)
    for key, digest in files.items():
        assert sha256_hex(store.read(key)) == digest
    # Running it again stores nothing twice; --overwrite stores everything again.
    again = backup.restore_files(result.path)
    assert (again.restored, again.skipped) == (0, 7)
    assert backup.restore_files(result.path, overwrite=True).restored == 7


def test_restore_files_refuses_a_damaged_copy_and_keeps_what_is_stored(data, tmp_path):
    result = backup.create(tmp_path / "b")
    entry = result.manifest["files"][0]
    store = evidence.storage()
    store.delete(entry["key"])
    (result.path / "files" / entry["key"]).write_bytes(b"damaged in the backup")

    report = backup.restore_files(result.path)

    assert report.problems == [
        f"files: {entry['key']} does not match its manifest entry; not restored"
    ]
    assert not store.exists(entry["key"])
    assert report.restored == 0 and report.skipped == 6


def test_restore_files_needs_a_backup_with_files(data, tmp_path, runner):
    listed = backup.create(tmp_path / "b", include_files=False)
    assert backup.restore_files(listed.path).problems == [
        "this backup holds no files (made with --manifest-only)"
    ]
    assert not backup.restore_files(tmp_path).ok  # no manifest at all
    made = backup.create(tmp_path / "c")
    store = evidence.storage()
    for entry in made.manifest["files"]:
        store.delete(entry["key"])
    done = runner.invoke(args=["backup", "restore-files", str(made.path)])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("7 file(s) restored, 0 already in storage")
    broken = runner.invoke(args=["backup", "restore-files", str(listed.path)])
    assert broken.exit_code == 1 and "PROBLEM: this backup holds no files" in broken.output
