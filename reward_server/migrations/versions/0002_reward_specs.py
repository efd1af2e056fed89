"""reward specs; cached, gate and spec columns on scores

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:39:42.967428
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reward_specs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_reward_specs_name_version')
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cached', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('gate', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('spec_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('spec_version', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_column('spec_version')
        batch_op.drop_column('spec_name')
        batch_op.drop_column('gate')
        batch_op.drop_column('cached')

    op.drop_table('reward_specs')
