"""run ids are per team: runs keyed by (team, id); steps and stored samples keyed with the team

A caller-chosen run id another team already held was refused as taken (ALREADY_EXISTS),
which told the caller that the other team had it (issue #17, 9a). Now each team has its
own namespace of run ids: runs' primary key is (team, id); steps carry their run's team
(filled from runs) under a (team, run_id) foreign key and a (team, run_id, step) unique
key; the stored-sample key of 0004 leads with the team. Scores already carry `team`; the
history indexes of 0001/0007 stay as they are (led by run_id). Every row is kept.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

WHERE = "run_id IS NOT NULL AND step IS NOT NULL AND group_id <> ''"
OLD_KEY = ['run_id', 'step', 'group_id', 'sample_index', 'component_index']
NEW_KEY = ['team', *OLD_KEY]
# SQLite keeps 0001's foreign key unnamed: batch mode finds it by this convention.
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}


def _fill_steps_team() -> None:
    op.execute("UPDATE steps SET team = (SELECT runs.team FROM runs WHERE runs.id = steps.run_id)")


def _sample_key(key: list[str]) -> None:
    op.drop_index('uq_scores_run_sample', table_name='scores')
    op.create_index('uq_scores_run_sample', 'scores', key, unique=True,
                    sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Order matters: runs is rebuilt (dropped and renamed) only once no foreign key
        # points at it, or the drop would cascade into steps.
        with op.batch_alter_table('steps', recreate='always', naming_convention=SQLITE_NAMES) as b:
            b.drop_constraint('fk_steps_run_id_runs', type_='foreignkey')
            b.add_column(sa.Column('team', sa.String(length=64), nullable=True))
        _fill_steps_team()
        with op.batch_alter_table('runs', recreate='always', naming_convention=SQLITE_NAMES) as b:
            b.drop_constraint('pk_runs', type_='primary')
            b.create_primary_key('pk_runs', ['team', 'id'])
        with op.batch_alter_table('steps', recreate='always') as b:
            b.alter_column('team', existing_type=sa.String(length=64), nullable=False)
            b.drop_constraint('uq_steps_run_step', type_='unique')
            b.create_unique_constraint('uq_steps_run_step', ['team', 'run_id', 'step'])
            b.create_foreign_key('fk_steps_run', 'runs', ['team', 'run_id'], ['team', 'id'], ondelete='CASCADE')
    else:
        insp = sa.inspect(op.get_bind())
        for fk in insp.get_foreign_keys('steps'):
            if fk['referred_table'] == 'runs':
                op.drop_constraint(fk['name'], 'steps', type_='foreignkey')
        op.drop_constraint(insp.get_pk_constraint('runs')['name'], 'runs', type_='primary')
        op.create_primary_key('runs_pkey', 'runs', ['team', 'id'])
        op.add_column('steps', sa.Column('team', sa.String(length=64), nullable=True))
        _fill_steps_team()
        op.alter_column('steps', 'team', existing_type=sa.String(length=64), nullable=False)
        op.drop_constraint('uq_steps_run_step', 'steps', type_='unique')
        op.create_unique_constraint('uq_steps_run_step', 'steps', ['team', 'run_id', 'step'])
        op.create_foreign_key('fk_steps_run', 'steps', 'runs', ['team', 'run_id'], ['team', 'id'],
                              ondelete='CASCADE')
    _sample_key(NEW_KEY)


def downgrade() -> None:
    """Back to one namespace of run ids: fails (the database refuses the old keys) while
    two teams hold one run id; rename one of them first."""
    _sample_key(OLD_KEY)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('steps', recreate='always') as b:
            b.drop_constraint('fk_steps_run', type_='foreignkey')
            b.drop_constraint('uq_steps_run_step', type_='unique')
            b.create_unique_constraint('uq_steps_run_step', ['run_id', 'step'])
            b.drop_column('team')
        with op.batch_alter_table('runs', recreate='always', naming_convention=SQLITE_NAMES) as b:
            b.drop_constraint('pk_runs', type_='primary')
            b.create_primary_key('pk_runs', ['id'])
        with op.batch_alter_table('steps', recreate='always') as b:
            b.create_foreign_key('fk_steps_run_id_runs', 'runs', ['run_id'], ['id'], ondelete='CASCADE')
    else:
        op.drop_constraint('fk_steps_run', 'steps', type_='foreignkey')
        op.drop_constraint('uq_steps_run_step', 'steps', type_='unique')
        op.create_unique_constraint('uq_steps_run_step', 'steps', ['run_id', 'step'])
        op.drop_column('steps', 'team')
        op.drop_constraint('runs_pkey', 'runs', type_='primary')
        op.create_primary_key('runs_pkey', 'runs', ['id'])
        op.create_foreign_key('steps_run_id_fkey', 'steps', 'runs', ['run_id'], ['id'], ondelete='CASCADE')
