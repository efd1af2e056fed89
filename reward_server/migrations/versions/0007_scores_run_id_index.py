"""history streams page by (run_id, id): an index that serves each page directly

QueryScores no longer holds one database connection (a server-side cursor) for as long
as its client takes to read: it fetches a page of rows by id after the last one sent and
gives the connection back. A run's page is then one range scan of this index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:00:00
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_scores_run_id_id', 'scores', ['run_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_scores_run_id_id', table_name='scores')
