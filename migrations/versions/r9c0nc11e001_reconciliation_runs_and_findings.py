"""reconciliation: runs with a one-running lock, findings, staging of the registry listing

Revision ID: r9c0nc11e001
Revises: dbdab14185c9
Create Date: 2026-11-27 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'r9c0nc11e001'
down_revision = 'dbdab14185c9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reconciliation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resumes', sa.Integer(), nullable=False),
    sa.Column('cursor_start', sa.String(length=255), nullable=True),
    sa.Column('offset_start', sa.Integer(), nullable=False),
    sa.Column('cursor_current', sa.String(length=255), nullable=True),
    sa.Column('offset_current', sa.Integer(), nullable=False),
    sa.Column('cursor_end', sa.String(length=255), nullable=True),
    sa.Column('offset_end', sa.Integer(), nullable=True),
    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('registry_rows', sa.Integer(), nullable=False),
    sa.Column('ledger_rows', sa.Integer(), nullable=False),
    sa.Column('missing_at_registry', sa.Integer(), nullable=False),
    sa.Column('resubmitted', sa.Integer(), nullable=False),
    sa.Column('mismatched', sa.Integer(), nullable=False),
    sa.Column('unknown_to_ledger', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs'))
    )
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_runs_started_at'), ['started_at'], unique=False)
        # At most one running run, on any host: the lock is this index.
        batch_op.create_index(
            'uq_reconciliation_runs_one_running', ['state'], unique=True,
            postgresql_where=sa.text("state = 'running'"),
            sqlite_where=sa.text("state = 'running'"),
        )

    op.create_table('reconciliation_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('invoice_key', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'], name=op.f('fk_reconciliation_findings_run_id_reconciliation_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_findings'))
    )
    with op.batch_alter_table('reconciliation_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_findings_invoice_key'), ['invoice_key'], unique=False)
        batch_op.create_index('ix_reconciliation_findings_kind_resolved_at', ['kind', 'resolved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_findings_run_id'), ['run_id'], unique=False)

    op.create_table('reconciliation_staging',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('registry_id', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('number', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=20, scale=2), nullable=True),
    sa.Column('tax', sa.Numeric(precision=20, scale=2), nullable=True),
    sa.Column('total', sa.Numeric(precision=20, scale=2), nullable=True),
    sa.Column('buyer_tax_id', sa.Text(), nullable=False),
    sa.Column('buyer_name', sa.Text(), nullable=False),
    sa.Column('seller_tax_id', sa.Text(), nullable=False),
    sa.Column('check_code', sa.Text(), nullable=False),
    # No foreign key and no key index, on purpose: see ReconciliationStaging.
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_staging'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        # Scratch data read again from the registry at will: no WAL for a million rows a run.
        op.execute('ALTER TABLE reconciliation_staging SET UNLOGGED')


def downgrade():
    op.drop_table('reconciliation_staging')
    with op.batch_alter_table('reconciliation_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_findings_run_id'))
        batch_op.drop_index('ix_reconciliation_findings_kind_resolved_at')
        batch_op.drop_index(batch_op.f('ix_reconciliation_findings_invoice_key'))

    op.drop_table('reconciliation_findings')
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_reconciliation_runs_one_running')
        batch_op.drop_index(batch_op.f('ix_reconciliation_runs_started_at'))

    op.drop_table('reconciliation_runs')
