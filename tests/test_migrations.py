"""Migrations: a single head, and the migrated schema is exactly the models' schema."""

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from portal.extensions import db
from portal.models import Upload

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def test_there_is_exactly_one_head():
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}; merge them"


def test_every_migration_has_a_descriptive_message():
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    for revision in ScriptDirectory.from_config(config).walk_revisions():
        assert revision.doc and len(revision.doc) > 15, revision.revision


def test_upgraded_database_matches_the_models(ctx):
    # The suite's database was built by `upgrade` from empty (see conftest).
    print(f"database dialect: {db.engine.dialect.name}")
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_the_purge_marker_becomes_the_purged_state_and_back(ctx):
    """p4r6e0d00001 moves evidence purged before it from a marker in ``extracted`` to the
    ``purged`` state with its time, leaves other uploads alone, and downgrades back."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    directory = str(MIGRATIONS)
    downgrade(directory=directory, revision="s7a1f0rev001")
    uploads = sa.table(
        "uploads",
        *(sa.column(n) for n in ("id", "original_name", "storage_key", "media_type")),
        *(sa.column(n) for n in ("size_bytes", "sha256", "state", "pages", "attempts")),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("extracted", sa.JSON()),
    )
    base = {"original_name": "a.png", "media_type": "image/png", "size_bytes": 1, "pages": 1}
    created = datetime(2024, 1, 2, tzinfo=UTC)
    if db.engine.dialect.name == "sqlite":
        created = created.replace(tzinfo=None)
    with db.engine.begin() as conn:
        conn.execute(
            uploads.insert(),
            [
                {
                    **base,
                    "id": 1,
                    "storage_key": "k1",
                    "sha256": "1" * 64,
                    "state": "extracted",
                    "attempts": 1,
                    "created_at": created,
                    "extracted": {"purged_at": "2026-01-05T03:04:05+00:00", "retention_months": 24},
                },
                {
                    **base,
                    "id": 2,
                    "storage_key": "k2",
                    "sha256": "2" * 64,
                    "state": "extracted",
                    "attempts": 1,
                    "created_at": created,
                    "extracted": {"fields": []},
                },
            ],
        )
    upgrade(directory=directory)
    db.session.expire_all()
    purged, kept = db.session.get(Upload, 1), db.session.get(Upload, 2)
    assert purged.is_purged and purged.extracted is None
    assert purged.purged_at == datetime(2026, 1, 5, 3, 4, 5, tzinfo=UTC)
    assert (kept.state, kept.purged_at, kept.extracted) == ("extracted", None, {"fields": []})
    db.session.rollback()

    downgrade(directory=directory, revision="s7a1f0rev001")
    with db.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(uploads.c.id, uploads.c.extracted)).all())
    assert rows[1] == {"purged_at": "2026-01-05T03:04:05+00:00"}
    upgrade(directory=directory)
