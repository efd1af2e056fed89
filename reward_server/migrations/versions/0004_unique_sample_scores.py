"""one stored row per (run, step, group, sample, component)

A group re-sent after an outage was stored twice; the writer now skips a row whose key is
already stored. Existing duplicates are removed first, keeping the earliest row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

WHERE = "run_id IS NOT NULL AND step IS NOT NULL AND group_id <> ''"
KEY = ['run_id', 'step', 'group_id', 'sample_index', 'component_index']


def upgrade() -> None:
    op.execute(
        f"DELETE FROM scores WHERE {WHERE} AND id NOT IN ("
        f"SELECT MIN(id) FROM scores WHERE {WHERE} GROUP BY {', '.join(KEY)})")
    op.create_index('uq_scores_run_sample', 'scores', KEY, unique=True,
                    sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index('uq_scores_run_sample', table_name='scores',
                  sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))
