"""audit events are append-only on PostgreSQL: a trigger refuses UPDATE and DELETE

Revision ID: a0d1t0a9pend
Revises: r9c0nc11e001
Create Date: 2026-11-26 22:55:00

"""
from alembic import op

revision = 'a0d1t0a9pend'
down_revision = 'r9c0nc11e001'
branch_labels = None
depends_on = None


def upgrade():
    # SQLite (the development default) has no roles to protect against; the hash chain and
    # `flask audit verify` still catch edits there.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER audit_events_append_only
        BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
