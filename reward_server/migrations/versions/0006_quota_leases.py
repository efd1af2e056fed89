"""a team's concurrent streams and samples in flight, counted across replicas

The stream and in-flight counters lived in each replica's memory (N replicas: N times the
limit); a lease row per held slot, renewed by its replica, lapses when the replica dies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 23:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quota_leases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('team', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('replica', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_quota_leases_team_kind', 'quota_leases', ['team', 'kind'])


def downgrade() -> None:
    op.drop_index('ix_quota_leases_team_kind', table_name='quota_leases')
    op.drop_table('quota_leases')
