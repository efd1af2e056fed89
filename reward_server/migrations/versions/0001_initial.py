"""initial schema: runs, steps, scores

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 08:13:52.413272
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('scores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=True),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=128), nullable=False),
    sa.Column('sample_index', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.String(length=128), nullable=False),
    sa.Column('component_index', sa.Integer(), nullable=False),
    sa.Column('verifier', sa.String(length=64), nullable=False),
    sa.Column('verifier_version', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('params_hash', sa.String(length=16), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reward', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('total_status', sa.String(length=8), nullable=False),
    sa.Column('total_reward', sa.Float(), nullable=True),
    sa.Column('prompt_sha256', sa.String(length=64), nullable=False),
    sa.Column('completion_sha256', sa.String(length=64), nullable=False),
    sa.Column('reference_sha256', sa.String(length=64), nullable=False),
    sa.Column('prompt_text', sa.Text(), nullable=True),
    sa.Column('completion_text', sa.Text(), nullable=True),
    sa.Column('reference_json', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_created', ['created_at'], unique=False)
        batch_op.create_index('ix_scores_run_step', ['run_id', 'step'], unique=False)
        batch_op.create_index('ix_scores_verifier_created', ['verifier', 'created_at'], unique=False)

    op.create_table('steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'step', name='uq_steps_run_step')
    )


def downgrade() -> None:
    op.drop_table('steps')
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index('ix_scores_verifier_created')
        batch_op.drop_index('ix_scores_run_step')
        batch_op.drop_index('ix_scores_created')

    op.drop_table('scores')
    op.drop_table('runs')
