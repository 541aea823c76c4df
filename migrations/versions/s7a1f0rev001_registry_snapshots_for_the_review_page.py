"""registry snapshots: the registry's record of an invoice as a worker last fetched it

Revision ID: s7a1f0rev001
Revises: ae57379d518a
Create Date: 2026-12-03 07:00:00

The review page shows the registry's record from stored state and asks a worker to refresh it
(issue 19 item 2): a web request never calls the registry.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 's7a1f0rev001'
down_revision = 'ae57379d518a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'registry_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('invoice_key', sa.String(length=40), nullable=False),
        sa.Column('found', sa.Boolean(), nullable=False),
        sa.Column('record', sa.JSON(none_as_null=True), nullable=True),
        sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('invoice_key'),
    )


def downgrade():
    op.drop_table('registry_snapshots')
