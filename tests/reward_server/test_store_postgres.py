"""The store on a real PostgreSQL server (127.0.0.1:5432): the test creates and drops its own database."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from reward_server.store import SchemaOutOfDateError, ScoreStore
from reward_server.store.store import make_engine, schema_revisions

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url():
    try:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text("select 1"))
    except Exception as e:  # pragma: no cover - depends on the host
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {e}")
    name = f"rewards_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _row(i: int, run_id: str) -> dict:
    return dict(run_id=run_id, step=i // 10, request_id="r", group_id=f"g{i // 4}", sample_index=i % 4,
                sample_id=str(i), component_index=0, verifier="math", verifier_version="1.0.0", params={},
                params_hash="0" * 16, weight=1.0, status="OK", reward=float(i % 2), reason="", latency_ms=1.0,
                total_status="OK", total_reward=float(i % 2), prompt_sha256="p" * 64, completion_sha256="c" * 64,
                reference_sha256="r" * 64, prompt_text="q", completion_text="a", reference_json="1", worker="pool:1")


def test_refuses_old_schema_then_upgrades(pg_url):
    with pytest.raises(SchemaOutOfDateError, match="reward-server db upgrade"):
        ScoreStore(pg_url, auto_migrate=False)
    store = ScoreStore(pg_url, auto_migrate=True)
    current, head = schema_revisions(store.engine)
    assert current == head
    store.close()


def test_runs_steps_and_scores_round_trip(pg_url):
    store = ScoreStore(pg_url)
    store.start_run("run-a", "a", {"lr": 1e-6})
    store.log_step("run-a", 0, {"reward_mean": 0.25})
    store.log_step("run-a", 0, {"kl": 0.01})  # a second log of the same step merges
    store.add_scores([_row(i, "run-a") for i in range(100)])
    assert store.flush()
    rows = list(store.query_scores(run_id="run-a", step_min=2, step_max=3, chunk_rows=7))
    assert [r.sample_id for r in rows] == [str(i) for i in range(20, 40)]
    assert store.run_stats("run-a") == (0, 100)
    assert store.steps("run-a")[0].metrics == {"reward_mean": 0.25, "kl": 0.01}
    run = store.finish_run("run-a", "finished", {"reward": 0.5})
    assert run.state == "finished" and run.finished_at is not None
    store.close()
    engine = make_engine(pg_url)
    with engine.connect() as c:
        assert c.execute(text("select count(*) from scores")).scalar() == 100
    engine.dispose()
