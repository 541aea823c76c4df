"""purged is an upload state: uploads.purged_at, state 'purged', no marker in extracted

Revision ID: p4r6e0d00001
Revises: s7a1f0rev001
Create Date: 2026-12-04 02:30:00

Evidence deleted under the retention policy was marked by replacing ``extracted`` with
``{"purged_at": ..., "retention_months": N}``, which two services had to look inside (issue 17).
It is now a state of its own with the time it happened; the retention period stays in the
``upload.purged`` audit row, as before. Downgrading writes the marker back (state ``failed``,
error ``purged``): what the upload's state was before the purge is not kept.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'p4r6e0d00001'
down_revision = 's7a1f0rev001'
branch_labels = None
depends_on = None

uploads = sa.table(
    'uploads',
    sa.column('id', sa.Integer()),
    sa.column('state', sa.String(16)),
    sa.column('error', sa.String(500)),
    sa.column('extracted', sa.JSON(none_as_null=True)),
    sa.column('purged_at', sa.DateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table('uploads') as batch_op:
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(uploads.c.id, uploads.c.extracted)).all()
    for upload_id, extracted in rows:
        if not (isinstance(extracted, dict) and extracted.get('purged_at')):
            continue
        stamp = datetime.fromisoformat(str(extracted['purged_at'])).astimezone(UTC)
        if conn.dialect.name == 'sqlite':  # naive UTC there, as portal.models.types stores it
            stamp = stamp.replace(tzinfo=None)
        conn.execute(
            uploads.update()
            .where(uploads.c.id == upload_id)
            .values(
                state='purged',
                error=None,
                extracted=None,
                purged_at=stamp,
            )
        )


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(uploads.c.id, uploads.c.purged_at).where(uploads.c.state == 'purged')
    ).all()
    for upload_id, purged_at in rows:
        if purged_at is not None and purged_at.tzinfo is None:
            purged_at = purged_at.replace(tzinfo=UTC)
        conn.execute(
            uploads.update()
            .where(uploads.c.id == upload_id)
            .values(
                state='failed',
                error='purged',
                extracted={'purged_at': purged_at.isoformat() if purged_at else None},
            )
        )
    with op.batch_alter_table('uploads') as batch_op:
        batch_op.drop_column('purged_at')
