"""security: encrypted TOTP secrets, last code step, verified e-mail, four-eyes reasons

Revision ID: ae57379d518a
Revises: 530ec45260de
Create Date: 2026-12-02 18:02:56.505781

TOTP secrets stored in plain text are encrypted here, in the migration, with the key of the app
running it (TOTP_ENCRYPTION_KEY; in production the app does not start without it). Doing it in
the deploy's `db upgrade`, not in a separate CLI step, means no version of the code ever runs
against a mix of plain and encrypted secrets: the new code can refuse anything it cannot
decrypt instead of falling back to reading plain text. The downgrade decrypts them again for the
older code.
"""
from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ae57379d518a'
down_revision = '530ec45260de'
branch_labels = None
depends_on = None

_users = sa.table("users", sa.column("id", sa.Integer), sa.column("totp_secret", sa.String))


def _rewrite_secrets(encrypting: bool) -> None:
    from portal.support import crypto

    if context.is_offline_mode():
        raise RuntimeError("TOTP secrets are re-encrypted with the app's key: run this online")
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_users.c.id, _users.c.totp_secret).where(_users.c.totp_secret.is_not(None))
    ).all()
    for user_id, stored in rows:
        if crypto.is_encrypted(stored) == encrypting:
            continue
        value = crypto.encrypt_secret(stored) if encrypting else crypto.decrypt_secret(stored)
        connection.execute(
            _users.update().where(_users.c.id == user_id).values(totp_secret=value)
        )


def upgrade():
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('second_reasons', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('totp_secret',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=255),
               existing_nullable=True)

    _rewrite_secrets(encrypting=True)


def downgrade():
    _rewrite_secrets(encrypting=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('totp_secret',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=64),
               existing_nullable=True)
        batch_op.drop_column('email_verified_at')
        batch_op.drop_column('totp_last_step')

    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
        batch_op.drop_column('second_reasons')
