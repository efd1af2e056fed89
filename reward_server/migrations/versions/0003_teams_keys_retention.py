"""teams, api keys, retention; team and texts_dropped on scores

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:41:38.513732
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retention_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cutoff', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rows_affected', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('teams',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('api_keys',
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replaced_by', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['team'], ['teams.name'], ),
    sa.PrimaryKeyConstraint('prefix')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=64), server_default='default', nullable=False))
        batch_op.add_column(sa.Column('replay_of', sa.String(length=64), nullable=True))

    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=64), server_default='default', nullable=False))
        batch_op.add_column(sa.Column('texts_dropped', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_scores_team_created', ['team', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index('ix_scores_team_created')
        batch_op.drop_column('texts_dropped')
        batch_op.drop_column('team')

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('replay_of')
        batch_op.drop_column('team')

    op.drop_table('api_keys')
    op.drop_table('teams')
    op.drop_table('retention_events')
