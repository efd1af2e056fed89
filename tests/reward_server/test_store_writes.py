"""The score writer on real databases (a SQLite file and PostgreSQL on 127.0.0.1:5432):
a result's rows are committed before its future completes, a re-sent group is stored
once, and one bad request cannot fail the requests committed with it."""
from __future__ import annotations

import time

import pytest
from alembic import command
from sqlalchemy import insert, text

from reward_server.store import ScoreRow, ScoreStore
from reward_server.store.store import StoreWriteError, _alembic_config, make_engine

from .test_store_postgres import _row, pg_url  # noqa: F401  (the PostgreSQL fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/scores.db"
    return request.getfixturevalue("pg_url")


def count(url: str, where: str = "1=1") -> int:
    engine = make_engine(url)
    with engine.connect() as c:
        n = c.execute(text(f"select count(*) from scores where {where}")).scalar()
    engine.dispose()
    return n


def test_committed_when_the_future_completes(url):
    store = ScoreStore(url)
    store.start_run("run-a", "a", {})
    fut = store.add_scores([_row(i, "run-a") for i in range(40)])
    assert fut.result(timeout=10) is None
    assert count(url) == 40  # another connection sees them: committed, not merely queued
    store.close()


def test_a_resent_group_is_stored_once_and_the_first_write_wins(url):
    store = ScoreStore(url)
    store.start_run("run-a", "a", {})
    first = [_row(i, "run-a") for i in range(8)]
    store.add_scores(first).result(timeout=10)
    again = [dict(r, reward=0.5, request_id="retry") for r in first]  # the same keys, re-scored
    store.add_scores(again + [_row(8, "run-a")]).result(timeout=10)
    rows = {r.sample_id: r for r in store.query_scores(run_id="run-a")}
    assert len(rows) == 9 and all(rows[str(i)].request_id == "r" for i in range(8))
    # Scores outside a run's groups have no key: each call is its own record.
    loose = [dict(_row(i, "run-a"), run_id=None, step=None, group_id="") for i in range(3)]
    store.add_scores(loose).result(timeout=10)
    store.add_scores(loose).result(timeout=10)
    assert count(url, "run_id is null") == 6
    store.close()


def test_a_bad_request_fails_alone(url):
    store = ScoreStore(url, flush_ms=300)  # gather both requests into one transaction
    store.start_run("run-a", "a", {})
    good = store.add_scores([_row(i, "run-a") for i in range(4)])
    bad = store.add_scores([dict(_row(4, "run-a"), verifier=None)])  # NOT NULL violated
    assert good.result(timeout=30) is None
    with pytest.raises(StoreWriteError, match="nothing was recorded"):  # refused content: not retried
        bad.result(timeout=30)
    assert count(url) == 4 and store.write_errors == 1
    store.close()


def test_upgrade_removes_duplicates_stored_before_the_unique_key(url):
    engine = make_engine(url)
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    with engine.begin() as c:
        c.execute(text("insert into runs (id, team, name, state, config, summary, created_at) "
                       "values ('run-a', 'default', 'a', 'running', '{}', '{}', CURRENT_TIMESTAMP)"))
        base = dict(_row(0, "run-a"), team="default", texts_dropped=False, cached=False, gate=False)
        c.execute(insert(ScoreRow.__table__), [dict(base, request_id=f"try{k}") for k in range(3)]
                  + [dict(base, run_id=None, step=None, group_id="", request_id=f"loose{k}") for k in range(2)])
    engine.dispose()
    store = ScoreStore(url)  # auto-migrates to head
    kept = [r.request_id for r in store.query_scores(run_id="run-a")]
    assert kept == ["try0"] and count(url, "run_id is null") == 2
    store.close()


def test_a_caller_giving_up_does_not_stop_the_writer(url):
    """A client's deadline cancels the asyncio future chained to a write; the writer must
    neither die of it nor drop the rows (issue #17, found while red-teaming the writer)."""
    store = ScoreStore(url, flush_ms=100)
    store.start_run("run-a", "a", {})
    first = store.add_scores([_row(0, "run-a")])
    assert not first.cancel()  # already running: the rows will be written
    assert store.add_scores([_row(1, "run-a")]).result(timeout=10) is None
    assert first.result(timeout=10) is None and count(url) == 2
    store.close()


def test_concurrent_log_steps_of_one_new_step_merge(url):
    """Found running the isolation benchmark: two LogStep calls racing to insert one step
    lost one to a unique-key error (INTERNAL to the caller)."""
    import threading

    store = ScoreStore(url)
    store.start_run("run-a", "a", {})
    errors = []

    def log(i: int) -> None:
        try:
            for step in range(20):
                store.log_step("run-a", step, {f"m{i}": float(step)})
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(set(r.metrics) == {"m0", "m1", "m2", "m3"} for r in store.steps("run-a"))
    store.close()


def test_a_big_request_is_written_in_turns_with_other_teams(url):
    """A request of many rows is committed in chunks of writer_batch_rows, and another
    team's request queued behind it is written after one chunk, not after all of them."""
    store = ScoreStore(url, batch_rows=100)
    store.start_run("run-a", "a", {})
    store.start_run("run-b", "b", {})
    big = store.add_scores([dict(_row(i, "run-a"), team="a", group_id=f"g{i}") for i in range(2000)])
    small = store.add_scores([dict(_row(0, "run-b"), team="b")])
    seen = []
    small.add_done_callback(lambda _: seen.append(count(url)))  # on the writer thread, at B's commit
    small.result(timeout=30)
    for _ in range(200):  # the callback runs just after the waiters are woken
        if seen:
            break
        time.sleep(0.02)
    assert seen and seen[0] < 1000, seen  # B's row went in after a chunk or two of A's, not all 20
    assert big.result(timeout=60) is None and count(url) == 2001
    assert store.flush(timeout_s=5) and store.unsettled() == []
    store.close()


def test_a_teams_requests_commit_in_order_and_close_writes_every_lane(url):
    """Queued without waiting, a team's requests still commit in the order sent (the first
    write of a key wins, as the trainer's re-sends expect), whichever lane is free; close()
    returns only when every team's rows are written."""
    store = ScoreStore(url, batch_rows=8)
    futs = []
    for team in ("a", "b", "c"):
        store.start_run("run", team, {}, team=team)
    for k in range(30):
        for team in ("a", "b", "c"):
            futs.append(store.add_scores([dict(_row(i, "run"), team=team, reward=float(k), request_id=f"k{k}")
                                          for i in range(8)]))
    store.close()
    assert all(f.done() and f.exception() is None for f in futs)
    engine = make_engine(url)
    with engine.connect() as c:
        stored = c.execute(text("select team, min(request_id), max(request_id), count(*) from scores "
                                "group by team order by team")).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [(t, "k0", "k0", 8) for t in ("a", "b", "c")]


def _team_a_blocked(pg_url: str):
    """A store with runs for teams a and b, and another connection holding an uncommitted
    insert of team a's first row: the writer's insert of that key waits for it (roll `tx`
    back to release it)."""
    store = ScoreStore(pg_url)
    store.start_run("run-a", "a", {}, team="a")
    store.start_run("run-b", "b", {}, team="b")
    row_a = dict(_row(0, "run-a"), team="a")
    blocker = store.engine.connect()
    tx = blocker.begin()
    blocker.execute(insert(ScoreRow), [row_a])
    return store, blocker, tx, row_a


def test_on_postgresql_a_teams_rows_do_not_wait_for_another_teams_transaction(pg_url):
    """Team A's transaction is held by a lock (another connection inserted one of its keys
    and has not committed): team B's rows are committed meanwhile by the other lane."""
    store, blocker, tx, row_a = _team_a_blocked(pg_url)
    with blocker:
        held = store.add_scores([dict(row_a, request_id="writer")])
        time.sleep(0.5)
        assert not held.done()  # waiting for the blocker's transaction
        other = store.add_scores([dict(_row(i, "run-b"), team="b") for i in range(8)])
        assert other.result(timeout=5) is None and count(pg_url, "team = 'b'") == 8
        more_a = store.add_scores([dict(_row(1, "run-a"), team="a")])  # behind A's held request
        time.sleep(0.3)
        assert not held.done() and not more_a.done()
        tx.rollback()
    assert held.result(timeout=10) is None and more_a.result(timeout=10) is None
    assert count(pg_url, "team = 'a'") == 2
    store.close()


def test_connections_the_database_dropped_are_replaced_at_once(pg_url, caplog):
    """The writer's lanes do no checkout ping: a pooled connection the database dropped
    (a restart, an idle timeout) costs one immediate retry on a fresh one, not a logged
    failure and a back-off, even for a request tried alone."""
    import logging

    store = ScoreStore(pg_url)
    store.start_run("run-a", "a", {}, team="a")
    for k in range(4):  # every lane has a pooled connection
        store.add_scores([dict(_row(i, "run-a"), team="a", step=k) for i in range(4)]).result(timeout=10)
    with store.engine.connect() as c:
        killed = c.execute(text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                "where datname = current_database() and pid <> pg_backend_pid()")).scalar()
    assert killed >= 1
    caplog.set_level(logging.INFO, logger="reward_server.store.store")
    t0 = time.monotonic()
    assert store.add_scores([dict(_row(i, "run-a"), team="a", step=9) for i in range(4)]).result(timeout=10) is None
    assert store._execute_with_retries([dict(_row(0, "run-a"), team="a", step=10)], attempts=1) is None
    assert time.monotonic() - t0 < 0.2 * 0.9  # no back-off was slept
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("reward_server")], \
        caplog.text
    assert count(pg_url, "team = 'a'") == 21
    store.close()


def test_one_teams_queued_requests_share_transactions(url):
    """Batches grow with the load for a team alone too: 40 requests of 5 rows of one team,
    queued while the writer waits for a lock, are committed in a few transactions of up to
    writer_batch_rows rows, not in a transaction (a WAL flush) each."""
    import sqlite3

    from sqlalchemy import event

    store = ScoreStore(url, batch_rows=100)
    store.start_run("run-a", "a", {}, team="a")
    commits = []
    if url.startswith("sqlite"):  # one lane, on the store's engine
        event.listen(store.engine, "commit", lambda conn: commits.append(1))
        blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    else:
        engine = make_engine(url)
        blocker = engine.raw_connection()
        blocker.cursor().execute("LOCK TABLE scores IN EXCLUSIVE MODE")
    first = store.add_scores([dict(_row(0, "run-a"), team="a", group_id="first")])
    time.sleep(0.3)
    futs = [store.add_scores([dict(_row(i, "run-a"), team="a", step=k) for i in range(5)]) for k in range(40)]
    time.sleep(0.2)
    assert not first.done()
    blocker.rollback()
    blocker.close()
    assert first.result(timeout=30) is None and all(f.result(timeout=30) is None for f in futs)
    assert count(url, "team = 'a'") == 201
    if url.startswith("sqlite"):
        n = len(commits)
    else:
        with engine.connect() as c:
            n = c.execute(text("select count(distinct xmin::text) from scores")).scalar()
        engine.dispose()
    assert n <= 4, f"{n} transactions for 201 rows of 41 requests (batch_rows 100)"
    store.close()


def test_on_postgresql_a_caller_in_flush_does_not_swallow_a_free_lanes_wakeup(pg_url):
    """Lane 1 waits for a lock on team A's rows; a thread waits in flush(). Team B's request
    must wake the free lane, not the flush() caller (which goes back to waiting), or B's
    rows wait for A's transaction after all."""
    import threading

    store, blocker, tx, row_a = _team_a_blocked(pg_url)
    with blocker:
        held = store.add_scores([dict(row_a, request_id="writer")])
        time.sleep(0.3)
        flusher = threading.Thread(target=store.flush, kwargs={"timeout_s": 20}, daemon=True)
        flusher.start()
        time.sleep(0.2)
        more_a = store.add_scores([dict(_row(1, "run-a"), team="a")])  # the free lane wakes, finds only A
        time.sleep(0.2)
        other = store.add_scores([dict(_row(i, "run-b"), team="b") for i in range(8)])
        try:
            assert other.result(timeout=5) is None and count(pg_url, "team = 'b'") == 8
            assert not held.done()
        finally:
            tx.rollback()
    assert held.result(timeout=10) is None and more_a.result(timeout=10) is None
    flusher.join(timeout=10)
    store.close()


def test_requests_with_different_columns_committed_together_keep_their_values(url):
    """Two teams' requests committed in one transaction, one naming columns the other left
    to their defaults (team, spec_name): each row keeps its own values. (Core's executemany
    compiles one statement from the first row's keys and drops the others' extra ones.)"""
    import sqlite3

    store = ScoreStore(url, writer_lanes=1)  # one lane: the two teams share its next transaction
    store.start_run("r", "r", {})
    store.start_run("r", "r", {}, team="b")
    if url.startswith("sqlite"):
        blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
    else:
        engine = make_engine(url)
        blocker = engine.raw_connection()
        blocker.cursor().execute("LOCK TABLE scores IN EXCLUSIVE MODE")
    futs = [store.add_scores([dict(_row(0, "r"), group_id="x")])]  # the lane waits for the lock
    time.sleep(0.3)
    futs.append(store.add_scores([dict(_row(1, "r"))]))
    futs.append(store.add_scores([dict(_row(2, "r"), team="b", spec_name="s")]))
    time.sleep(0.2)
    blocker.rollback()
    blocker.close()
    assert all(f.result(timeout=30) is None for f in futs)
    engine = make_engine(url)
    with engine.connect() as c:
        stored = c.execute(text("select team, sample_id, spec_name from scores order by sample_id")).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [("default", "0", None), ("default", "1", None), ("b", "2", "s")]
    store.close()
