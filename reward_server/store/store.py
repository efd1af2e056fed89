"""The score store: schema management, a group-committing background writer, and queries.

`add_scores` queues rows for the one writer thread and returns a future that completes
when they are committed; the service answers a request only then, so a reward a client
has seen is in the database even if the server is killed the next instant. The writer
commits whatever is queued as one transaction (up to `writer_batch_rows` rows; it may
wait `writer_flush_ms` to gather more), so batches grow with the load while an idle
server commits at once. A row whose (run, step, group, sample, component) is already
stored is skipped: a group re-sent after an outage is stored once.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from .models import SAMPLE_KEY, SAMPLE_KEY_WHERE, RetentionEvent, Run, ScoreRow, SpecRow, StepRow

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaOutOfDateError(RuntimeError):
    """The database schema is older than this server; the message says what to run."""


class StoreWriteError(RuntimeError):
    """The database did not take a batch of scores after retries (the request fails, so
    the client retries; a reward is never answered without its record)."""


class RunNotFoundError(LookupError):
    """No run with that id."""


class RunExistsError(ValueError):
    """A run id already taken by another team."""


class ScoreNotFoundError(LookupError):
    """No score with that id (for this team)."""


class SpecNotFoundError(LookupError):
    """No stored reward spec with that name (or version)."""


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL: readers do not block the writer thread, and the writer does not block them.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """(current revision of the database, newest revision this code knows)."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def upgrade_schema(engine: Engine) -> None:
    """Apply every pending Alembic migration (`reward-server db upgrade`)."""
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_STOP = object()


def _insert_skipping_stored(dialect: str) -> Any:
    """INSERT into scores that skips rows whose sample key is already stored."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # other databases: the unique index still refuses duplicates, as an error
        return insert(ScoreRow)
    return dialect_insert(ScoreRow).on_conflict_do_nothing(index_elements=list(SAMPLE_KEY),
                                                           index_where=text(SAMPLE_KEY_WHERE))


class ScoreStore:
    """Runs, steps and scores in one database. Thread-safe."""

    def __init__(self, url: str, *, auto_migrate: bool = True, batch_rows: int = 1000, flush_ms: int = 0):
        self.url = url
        self.engine = make_engine(url)
        current, head = schema_revisions(self.engine)
        if current != head:
            if not auto_migrate:
                raise SchemaOutOfDateError(
                    f"database schema is at revision {current or 'none'}, this server needs {head}: "
                    f"run `reward-server db upgrade --database-url {url}`")
            upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._batch_rows, self._flush_s = batch_rows, flush_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._queued_at: collections.deque[float] = collections.deque()  # per queued request, oldest first
        self._cond = threading.Condition()
        self.rows_written = 0
        self.write_errors = 0
        self._insert_stmt = _insert_skipping_stored(self.engine.dialect.name)
        self._writer = threading.Thread(target=self._write_loop, name="score-writer", daemon=True)
        self._writer.start()

    # -- writes ---------------------------------------------------------------------
    def add_scores(self, rows: list[dict[str, Any]]) -> Future:
        """Queue score rows (dicts of ScoreRow columns) for the writer. Returns at once a
        future that completes when the rows are committed, or fails with StoreWriteError
        when the database refused them after retries."""
        fut: Future = Future()
        if not rows:
            fut.set_result(None)
            return fut
        with self._cond:
            self._pending += len(rows)
            self._queued_at.append(time.monotonic())
        self._queue.put((rows, fut))
        return fut

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            items: list[tuple[list[dict[str, Any]], Future]] = []
            n = 0
            item = self._queue.get()
            deadline = time.monotonic() + self._flush_s
            while True:
                if item is _STOP:
                    stop = True
                    break
                items.append(item)
                n += len(item[0])
                if n >= self._batch_rows:
                    break
                try:  # with flush_s == 0: only what is already queued (group commit)
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if items:
                self._insert(items)

    def _insert(self, items: list[tuple[list[dict[str, Any]], Future]]) -> None:
        batch = [row for rows, _ in items for row in rows]
        error = self._execute_with_retries(batch)
        if error is not None and len(items) > 1:
            # One bad request must not fail the others committed with it: write each alone.
            for rows, fut in items:
                self._settle([(rows, fut)], self._execute_with_retries(rows, attempts=1))
        else:
            self._settle(items, error)

    def _execute_with_retries(self, batch: list[dict[str, Any]], attempts: int = 5) -> Exception | None:
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                with self._sessions.begin() as s:
                    s.execute(self._insert_stmt, batch)
                return None
            except Exception as e:  # a transient lock or connection drop must not lose scores
                error = e
                log.exception("score write failed (attempt %d/%d, %d rows)", attempt + 1, attempts, len(batch))
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2 ** attempt)
        return error

    def _settle(self, items: list[tuple[list[dict[str, Any]], Future]], error: Exception | None) -> None:
        n = sum(len(rows) for rows, _ in items)
        with self._cond:
            if error is None:
                self.rows_written += n
            else:
                self.write_errors += n
            self._pending -= n
            for _ in items:
                self._queued_at.popleft()
            self._cond.notify_all()
        for _, fut in items:
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(StoreWriteError(
                    f"the score store did not take the results ({type(error).__name__}: {str(error)[:200]}); "
                    f"nothing was recorded: retry the request"))

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._pending

    @property
    def writer_lag_s(self) -> float:
        """Seconds the oldest queued, not yet committed request has waited (0 when none)."""
        with self._cond:
            return time.monotonic() - self._queued_at[0] if self._queued_at else 0.0

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Block until every queued row is written. False if `timeout_s` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Write everything queued, then stop the writer and release connections."""
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()
        self.engine.dispose()

    # -- runs and steps -------------------------------------------------------------
    def start_run(self, run_id: str, name: str, config: dict[str, Any], team: str = "default",
                  replay_of: str | None = None) -> Run:
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                run = Run(id=run_id, name=name, config=config, state="running", team=team, replay_of=replay_of)
                s.add(run)
            elif run.team != team:
                raise RunExistsError(f"run_id {run_id!r} is taken; choose another id")
            else:  # a resumed run keeps its history
                run.state = "running"
            s.flush()
            return run

    def get_run(self, run_id: str, team: str | None = None) -> Run:
        """The run, if it exists and (unless `team` is None) belongs to `team`.

        Another team's run is reported exactly like a missing one.
        """
        with self._sessions() as s:
            run = s.get(Run, run_id)
            if run is None or (team is not None and run.team != team):
                raise RunNotFoundError(f"no run with run_id {run_id!r}")
            return run

    def log_step(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        with self._sessions.begin() as s:
            if s.get(Run, run_id) is None:
                raise RunNotFoundError(f"no run with run_id {run_id!r}; call StartRun first")
            row = s.scalar(select(StepRow).where(StepRow.run_id == run_id, StepRow.step == step))
            if row is None:
                s.add(StepRow(run_id=run_id, step=step, metrics=metrics))
            else:
                row.metrics = {**row.metrics, **metrics}

    def finish_run(self, run_id: str, state: str, summary: dict[str, float]) -> Run:
        with self._sessions.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise RunNotFoundError(f"no run with run_id {run_id!r}")
            run.state, run.summary, run.finished_at = state, summary, datetime.now(timezone.utc)
            s.flush()
            return run

    def run_stats(self, run_id: str) -> tuple[int, int]:
        """(last logged step or -1, number of score rows) of a run."""
        with self._sessions() as s:
            last = s.scalar(select(func.max(StepRow.step)).where(StepRow.run_id == run_id))
            count = s.scalar(select(func.count()).select_from(ScoreRow).where(ScoreRow.run_id == run_id))
            return (-1 if last is None else last), int(count or 0)

    def list_runs(self, limit: int = 100, team: str | None = None) -> list[Run]:
        q = select(Run).order_by(Run.created_at.desc()).limit(limit)
        if team is not None:
            q = q.where(Run.team == team)
        with self._sessions() as s:
            return list(s.scalars(q))

    def steps(self, run_id: str) -> list[StepRow]:
        with self._sessions() as s:
            return list(s.scalars(select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.step)))

    # -- reward specs ---------------------------------------------------------------
    def put_spec(self, name: str, body: dict[str, Any], description: str = "") -> tuple[SpecRow, bool]:
        """Store `body` as the next version of `name` unless it equals the newest one.

        Returns (row, created). Versions count from 1 and are immutable.
        """
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._sessions.begin() as s:
            newest = s.scalar(select(SpecRow).where(SpecRow.name == name).order_by(SpecRow.version.desc()).limit(1))
            if newest is not None and newest.body_sha256 == digest:
                return newest, False
            row = SpecRow(name=name, version=(newest.version + 1) if newest else 1, body=body,
                          body_sha256=digest, description=description)
            s.add(row)
            s.flush()
            return row, True

    def get_spec(self, name: str, version: int = 0) -> SpecRow:
        """Version `version` of spec `name` (0 = newest). Raises SpecNotFoundError."""
        with self._sessions() as s:
            q = select(SpecRow).where(SpecRow.name == name)
            q = q.where(SpecRow.version == version) if version else q.order_by(SpecRow.version.desc()).limit(1)
            row = s.scalar(q)
        if row is None:
            known = ", ".join(r.name for r in self.list_specs()) or "(none)"
            what = f"{name}@{version}" if version else name
            raise SpecNotFoundError(f"no stored reward spec {what!r}; stored: {known}")
        return row

    def list_specs(self) -> list[SpecRow]:
        """The newest version of every stored spec, by name."""
        with self._sessions() as s:
            newest = (select(SpecRow.name, func.max(SpecRow.version).label("v")).group_by(SpecRow.name).subquery())
            return list(s.scalars(select(SpecRow).join(newest, (SpecRow.name == newest.c.name)
                                                       & (SpecRow.version == newest.c.v)).order_by(SpecRow.name)))

    # -- queries --------------------------------------------------------------------
    def get_score(self, score_id: int, team: str | None = None) -> ScoreRow:
        self.flush()
        with self._sessions() as s:
            row = s.get(ScoreRow, score_id)
        if row is None or (team is not None and row.team != team):
            raise ScoreNotFoundError(f"no score with score_id {score_id}")
        return row

    def query_scores(self, *, run_id: str | None = None, step_min: int | None = None,
                     step_max: int | None = None, verifier: str | None = None,
                     status: str | None = None, limit: int | None = None, team: str | None = None,
                     created_after: datetime | None = None, created_before: datetime | None = None,
                     reward_min: float | None = None, reward_max: float | None = None,
                     chunk_rows: int = 1000) -> Iterator[ScoreRow]:
        """Stored score rows in id order, filtered; streamed in chunks of `chunk_rows`.

        `team=None` means every team (admins); otherwise only that team's rows.
        """
        self.flush()
        q = select(ScoreRow)
        if team is not None:
            q = q.where(ScoreRow.team == team)
        if created_after is not None:
            q = q.where(ScoreRow.created_at >= created_after)
        if created_before is not None:
            q = q.where(ScoreRow.created_at < created_before)
        if reward_min is not None:
            q = q.where(ScoreRow.reward >= reward_min)
        if reward_max is not None:
            q = q.where(ScoreRow.reward <= reward_max)
        if run_id:
            q = q.where(ScoreRow.run_id == run_id)
        if step_min is not None:
            q = q.where(ScoreRow.step >= step_min)
        if step_max is not None:
            q = q.where(ScoreRow.step <= step_max)
        if verifier:
            q = q.where(ScoreRow.verifier == verifier)
        if status:
            q = q.where(ScoreRow.status == status)
        q = q.order_by(ScoreRow.id)
        if limit:
            q = q.limit(limit)
        # One query streamed through a server-side cursor (PostgreSQL) in chunks: repeated
        # keyset queries would re-sort a whole run's rows once per chunk.
        with self._sessions() as s:
            if self.engine.dialect.name == "postgresql":
                # Plan for the whole result, not the first rows: PostgreSQL's cursor default
                # (0.1) picks a primary-key walk that filters a million rows to find a run's few.
                s.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
            yield from s.scalars(q.execution_options(yield_per=chunk_rows))

    # -- retention ------------------------------------------------------------------
    def drop_texts_before(self, cutoff: datetime) -> int:
        """Retention: blank the texts of scores created before `cutoff`, keeping their hashes,
        rewards and provenance. Rows are never deleted; every application is recorded as a
        RetentionEvent (and logged) with the number of rows it touched."""
        self.flush()
        with self._sessions.begin() as s:
            n = s.execute(update(ScoreRow).where(ScoreRow.created_at < cutoff, ScoreRow.texts_dropped.is_(False))
                          .values(prompt_text=None, completion_text=None, reference_json=None,
                                  texts_dropped=True)).rowcount
            s.add(RetentionEvent(cutoff=cutoff, rows_affected=n))
        log.info("retention: dropped the texts of %d score rows created before %s", n, cutoff.isoformat())
        return n

    def session(self) -> Session:
        return self._sessions()
