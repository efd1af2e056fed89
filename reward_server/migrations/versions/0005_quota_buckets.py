"""per-team token buckets shared by the replicas on one database

Quotas lived in each replica's memory, so N replicas gave a team N times its quota.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 22:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quota_buckets',
    sa.Column('team', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('stamp', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('team', 'kind')
    )


def downgrade() -> None:
    op.drop_table('quota_buckets')
