"""The Alembic migrations build exactly the schema the ORM models describe."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text

from reward_server.store import Base, ScoreRow, ScoreStore
from reward_server.store.store import RunNotFoundError, _alembic_config, make_engine, schema_revisions, upgrade_schema

from .test_store_postgres import _row, pg_url  # noqa: F401  (the PostgreSQL fixture)


def test_migrations_match_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade_schema(engine)
    current, head = schema_revisions(engine)
    assert current == head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/m.db"
    return request.getfixturevalue("pg_url")


def test_0008_keys_runs_by_team_and_keeps_the_data(url):
    """Issue #17, 9a: a database at 0007 with runs, steps and scores upgrades to run ids
    scoped per team; every row stays, and a second team can then take an existing id."""
    engine = make_engine(url)
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    with engine.begin() as c:
        for run_id, team in (("exp-1", "team-a"), ("run-b", "team-b")):
            c.execute(text("insert into runs (id, team, name, state, config, summary, created_at) values "
                           "(:id, :team, 'n', 'running', '{}', '{}', CURRENT_TIMESTAMP)"), {"id": run_id, "team": team})
            c.execute(text("insert into steps (run_id, step, metrics, created_at) values "
                           "(:id, 3, '{\"m\": 1.0}', CURRENT_TIMESTAMP)"), {"id": run_id})
            base = dict(_row(0, run_id), team=team, texts_dropped=False, cached=False, gate=False)
            c.execute(insert(ScoreRow.__table__), [dict(base, sample_index=i, sample_id=str(i)) for i in range(3)])
    engine.dispose()

    store = ScoreStore(url)  # auto-migrates to head
    assert schema_revisions(store.engine)[0] == schema_revisions(store.engine)[1]
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("select team, run_id, step from steps order by team")).all() == [
            ("team-a", "exp-1", 3), ("team-b", "run-b", 3)]
    assert store.get_run("exp-1", "team-a").team == "team-a"
    assert store.run_stats("exp-1", "team-a") == (3, 3) and store.run_stats("run-b", "team-b") == (3, 3)
    with pytest.raises(RunNotFoundError):
        store.get_run("exp-1", "team-b")
    # team B takes A's id: its own run, steps and the very same sample keys
    store.start_run("exp-1", "b", {}, team="team-b")
    store.log_step("exp-1", 3, {"m": 2.0}, team="team-b")
    b_rows = [dict(_row(0, "exp-1"), team="team-b", sample_index=i, sample_id=f"b{i}") for i in range(3)]
    store.add_scores(b_rows).result(timeout=10)
    store.add_scores(b_rows).result(timeout=10)  # re-sent: still stored once
    assert store.run_stats("exp-1", "team-a") == (3, 3) and store.run_stats("exp-1", "team-b") == (3, 3)
    assert [s.metrics for s in store.steps("exp-1", team="team-a")] == [{"m": 1.0}]
    assert [s.metrics for s in store.steps("exp-1", team="team-b")] == [{"m": 2.0}]
    assert [r.sample_id for r in store.query_scores(run_id="exp-1", team="team-b")] == ["b0", "b1", "b2"]
    store.close()


def test_0008_downgrades_and_upgrades_again_with_data(url):
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.begin() as c:
        c.execute(text("insert into runs (id, team, name, state, config, summary, created_at) values "
                       "('r', 't', 'n', 'running', '{}', '{}', CURRENT_TIMESTAMP)"))
        c.execute(text("insert into steps (team, run_id, step, metrics, created_at) values "
                       "('t', 'r', 1, '{}', CURRENT_TIMESTAMP)"))
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with engine.connect() as c:
        assert c.execute(text("select run_id, step from steps")).all() == [("r", 1)]
    upgrade_schema(engine)
    with engine.connect() as c:
        assert c.execute(text("select team, run_id, step from steps")).all() == [("t", "r", 1)]
    engine.dispose()
