"""The score store: schema management, a group-committing background writer, and queries.

`add_scores` queues rows for the writer and returns a future that completes
when they are committed; the service answers a request only then, so a reward a client
has seen is in the database even if the server is killed the next instant. The writer
commits whatever is queued as one transaction (up to `writer_batch_rows` rows; it may
wait `writer_flush_ms` to gather more), so batches grow with the load while an idle
server commits at once. A row whose (team, run, step, group, sample, component) is already
stored is skipped: a group re-sent after an outage is stored once.

Teams take turns at the writer: each transaction takes queued requests round-robin by
team, so one team's backlog of rows never sits ahead of another team's next request (a
request of more than `writer_batch_rows` rows takes its turns chunk by chunk). On
PostgreSQL the writer has several lanes (threads, each with its own connection), and a
team is written by one lane at a time: another team's rows never wait for a transaction
of the first team's that is in flight (a commit there waits for the WAL flush, milliseconds
that grow under load), only for a free lane; a team's own requests still commit in order.
SQLite has one write lock, so one lane. A
batch the database refuses for its content (a value it cannot hold) is not retried: each
request in it is tried once alone and the refused one fails with StoreRefusedError, so a
bad row costs the writer one round trip, never seconds. Only connection and operational
failures are retried.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future
from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ..errors import TooLargeError
from .models import SAMPLE_KEY, SAMPLE_KEY_WHERE, RetentionEvent, Run, ScoreRow, SpecRow, StepRow

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


# A step's metrics, in one LogStep and once merged (the servicer checks each call against
# the same two numbers). Without the merged bound, LogStep calls to one step with new names grew its row
# (each call re-reading and re-writing it) and ListSteps' answer without bound.
STEP_METRICS_MAX = 1024
STEP_METRICS_MAX_BYTES = 64 << 10

class SchemaOutOfDateError(RuntimeError):
    """The database schema is older than this server; the message says what to run."""


class StoreWriteError(RuntimeError):
    """The database did not take a batch of scores after retries (the request fails, so
    the client retries; a reward is never answered without its record)."""


class StoreRefusedError(StoreWriteError):
    """The database refused these rows for their content (it would refuse them again);
    the request is at fault, not the database's availability."""


class GroupConflictError(ValueError):
    """A group re-sent under a (run, step, group id) already stored with other content."""


def redact_url(url: str) -> str:
    """`url` with its password masked, for logs and command output."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _permanent(error: Exception) -> bool:
    """A refusal of the statement's content (data, constraint, programming errors), which a
    retry would meet again; connection and operational failures are transient."""
    return isinstance(error, sa_exc.DBAPIError) and not isinstance(
        error, (sa_exc.OperationalError, sa_exc.InterfaceError)) and not error.connection_invalidated


class RunNotFoundError(LookupError):
    """No run with that id (in that team)."""


class AmbiguousRunError(ValueError):
    """A read naming no team found runs of that id in several teams (admins only)."""


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


def _same_columns(batch: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`batch` as consecutive runs of rows naming the same columns (in order: the first write
    of a key still wins). Core's executemany compiles one statement from the first row's
    keys: another request's row naming more columns would lose them silently (its team,
    say), or one naming fewer would be refused. The ORM's bulk insert grouped them so."""
    runs, start = [], 0
    for i in range(1, len(batch)):
        if batch[i].keys() != batch[start].keys():
            runs.append(batch[start:i])
            start = i
    runs.append(batch[start:])
    return runs


class ScoreStore:
    """Runs, steps and scores in one database. Thread-safe."""

    def __init__(self, url: str, *, auto_migrate: bool = True, batch_rows: int = 250, flush_ms: int = 0,
                 writer_lanes: int = 2):
        self.url = url
        self.engine = make_engine(url)
        current, head = schema_revisions(self.engine)
        if current != head:
            if not auto_migrate:
                raise SchemaOutOfDateError(
                    f"database schema is at revision {current or 'none'}, this server needs {head}: "
                    f"run `reward-server db upgrade --database-url {redact_url(url)}`")
            upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._batch_rows, self._flush_s = batch_rows, flush_ms / 1000
        sqlite = self.engine.dialect.name == "sqlite"
        lanes = 1 if sqlite else max(1, writer_lanes)
        # The lanes' own connections: a history read holding the shared pool never holds
        # a write, and no checkout ping per batch (a dropped connection fails that attempt,
        # which is retried on a fresh one).
        self._write_engine = self.engine if sqlite else create_engine(
            url, pool_size=lanes, max_overflow=0, pool_pre_ping=False)
        self._waiting: OrderedDict[str, deque] = OrderedDict()  # team -> queued requests, in turn order
        self._writing: set[str] = set()  # teams whose rows a lane is committing now
        self._stopping = False
        self._pending = 0
        # every queued request not yet settled -> when it was queued (writer lag = the oldest's age)
        self._unsettled: dict[Future, float] = {}
        self._step_locks = [threading.Lock() for _ in range(64)]
        # One lock, two conditions: lanes wait on `_work` for rows to write, flush() callers on
        # `_cond` for settlements, so a request's single wake-up always reaches a lane (on one
        # condition, a flush() caller could take it, go back to waiting, and leave a free lane
        # asleep while another team's transaction was in flight).
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        self._work = threading.Condition(lock)
        self.rows_written = 0
        self.write_errors = 0
        self._insert_stmt = _insert_skipping_stored(self.engine.dialect.name)
        self._lanes = [threading.Thread(target=self._lane_loop, name=f"score-writer-{i}", daemon=True)
                       for i in range(lanes)]
        for t in self._lanes:
            t.start()

    # -- writes ---------------------------------------------------------------------
    def add_scores(self, rows: list[dict[str, Any]]) -> Future:
        """Queue score rows (dicts of ScoreRow columns, one team's) for the writer. Returns at
        once a future that completes when the rows are committed, or fails with
        StoreRefusedError (the database refused their content; not retried) or StoreWriteError
        (it stayed unreachable through the retries)."""
        fut: Future = Future()
        # Running from the start: a caller that gives up (a client's deadline cancels the
        # asyncio future chained to this one) cannot cancel it under the writer's feet.
        fut.set_running_or_notify_cancel()
        if not rows:
            fut.set_result(None)
            return fut
        chunks = self._chunks(rows, fut)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the score store is closed")
            self._pending += len(rows)
            self._unsettled[fut] = time.monotonic()
            self._waiting.setdefault(str(rows[0].get("team", "")), deque()).extend(chunks)
            self._work.notify()
        return fut

    def _chunks(self, rows: list[dict[str, Any]], fut: Future) -> list[tuple[list[dict[str, Any]], Future]]:
        """A request of more than `batch_rows` rows as chunks of at most that many, each its
        own turn (another team's request waits for one chunk, never for a whole big
        request); `fut` settles when the last chunk does, failed if any chunk failed. A
        failure can leave the earlier chunks stored (a re-sent group is stored once)."""
        if len(rows) <= self._batch_rows:
            return [(rows, fut)]
        parts = [rows[i:i + self._batch_rows] for i in range(0, len(rows), self._batch_rows)]
        state: dict[str, Any] = {"left": len(parts), "error": None}

        def settled(part: Future) -> None:  # runs on the writer thread, in _settle
            if part.exception() is not None and state["error"] is None:
                state["error"] = part.exception()
            state["left"] -= 1
            if state["left"] == 0:
                with self._cond:
                    self._unsettled.pop(fut, None)
                    self._cond.notify_all()
                if state["error"] is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(state["error"])

        out = []
        for p in parts:
            sub: Future = Future()
            sub.set_running_or_notify_cancel()
            sub.add_done_callback(settled)
            out.append((p, sub))
        return out

    def _next_batch(self) -> list[tuple[list[dict[str, Any]], Future]]:
        """Up to `batch_rows` rows, one request per team in turn (a team's next request
        waits behind every other team's next one), of teams no other lane is writing.
        Called with `_cond` held."""
        items: list[tuple[list[dict[str, Any]], Future]] = []
        n = 0
        # Round after round (a team alone still fills the batch: one request per transaction
        # would cost a WAL flush per request and cap a team's rate).
        while n < self._batch_rows:
            team = next(self._free_teams(), None)
            if team is None:
                break
            q = self._waiting[team]
            if items and n + len(q[0][0]) > self._batch_rows:
                break
            rows_fut = q.popleft()
            del self._waiting[team]
            if q:
                self._waiting[team] = q  # to the back of the turn order
            items.append(rows_fut)
            n += len(rows_fut[0])
        return items

    def _free_teams(self) -> Iterator[str]:
        """Teams with rows queued that no lane is writing, in turn order. Called with `_cond` held."""
        return (team for team in self._waiting if team not in self._writing)

    def _lane_loop(self) -> None:
        while True:
            with self._cond:
                self._work.wait_for(lambda: next(self._free_teams(), None) is not None
                                    or (self._stopping and not self._waiting))
                if not self._waiting:
                    return  # stopping, and every queued row is written
                if self._flush_s and not self._stopping and sum(
                        len(rows) for team in self._free_teams() for rows, _ in self._waiting[team]) < self._batch_rows:
                    self._work.wait(self._flush_s)  # gather a bigger batch under load
                items = self._next_batch()
                teams = {str(rows[0].get("team", "")) for rows, _ in items}
                self._writing |= teams
            try:
                if items:
                    self._insert(items)
            except Exception as e:  # a lane must outlive any batch
                log.exception("score writer: unexpected failure; failing %d requests", len(items))
                self._settle([it for it in items if not it[1].done()], e)
            finally:
                with self._cond:
                    self._writing -= teams
                    self._work.notify_all()

    def _insert(self, items: list[tuple[list[dict[str, Any]], Future]]) -> None:
        batch = [row for rows, _ in items for row in rows]
        error = self._execute_with_retries(batch)
        if error is not None and len(items) > 1:
            # One bad request must not fail the others committed with it: write each alone.
            for rows, fut in items:
                self._settle([(rows, fut)], self._execute_with_retries(rows, attempts=1 if _permanent(error) else 2))
        else:
            self._settle(items, error)

    def _execute_with_retries(self, batch: list[dict[str, Any]], attempts: int = 5) -> Exception | None:
        error: Exception | None = None
        reconnected = False
        attempt = 0
        while attempt < attempts:
            try:
                with self._write_engine.begin() as conn:  # Core, not the ORM: a third less CPU per row
                    for part in _same_columns(batch):
                        conn.execute(self._insert_stmt, part)
                return None
            except Exception as e:  # a transient lock or connection drop must not lose scores
                error = e
                if not reconnected and isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
                    # A pooled connection the database dropped (no checkout ping): at once, on a fresh one.
                    reconnected = True
                    log.info("score writer: the database dropped a connection; writing on a fresh one")
                    continue
                if _permanent(e):  # the same rows would be refused again: do not hold the writer
                    log.warning("the database refused a batch of %d score rows: %s", len(batch), e)
                    return e
                log.exception("score write failed (attempt %d/%d, %d rows)", attempt + 1, attempts, len(batch))
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2 ** attempt)
                attempt += 1
        return error

    def _settle(self, items: list[tuple[list[dict[str, Any]], Future]], error: Exception | None) -> None:
        n = sum(len(rows) for rows, _ in items)
        with self._cond:
            if error is None:
                self.rows_written += n
            else:
                self.write_errors += n
            self._pending -= n
            for _, fut in items:
                self._unsettled.pop(fut, None)
            self._cond.notify_all()
        for _, fut in items:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            elif _permanent(error):
                # The caller's message names no SQL, host or value: the log has the details.
                fut.set_exception(StoreRefusedError(
                    f"the score store cannot hold these results ({type(getattr(error, 'orig', None) or error).__name__}:"
                    f" a text with a NUL character or a value longer than its column?); nothing was recorded"))
            else:
                fut.set_exception(StoreWriteError(
                    "the score store did not take the results (the database is unavailable); nothing was "
                    "recorded: retry the request"))

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._pending

    @property
    def writer_lag_s(self) -> float:
        """Seconds the oldest queued, not yet committed request has waited (0 when none)."""
        with self._cond:
            return time.monotonic() - min(self._unsettled.values()) if self._unsettled else 0.0

    def unsettled(self) -> list[Future]:
        """The futures of every request queued and not yet settled (a barrier to await)."""
        with self._cond:
            return list(self._unsettled)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Block until every row queued before this call is written (rows queued meanwhile
        are not waited for, so a busy writer cannot hold a reader forever). False if
        `timeout_s` passed first."""
        with self._cond:
            before = set(self._unsettled)
            return self._cond.wait_for(lambda: not (before & self._unsettled.keys()), timeout=timeout_s)

    def close(self) -> None:
        """Write everything queued, then stop the writer and release connections."""
        with self._cond:
            self._stopping = True
            self._work.notify_all()
        for t in self._lanes:
            t.join()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()
        self.engine.dispose()

    # -- runs and steps -------------------------------------------------------------
    # Run ids are per team: every call names the team whose run it means (`team`), and
    # another team's run of the same id is neither seen nor touched.
    def start_run(self, run_id: str, name: str, config: dict[str, Any], team: str = "default",
                  replay_of: str | None = None) -> Run:
        """Create `team`'s run `run_id`, or resume it (state back to running, history kept)."""
        with self._sessions.begin() as s:
            run = s.get(Run, (team, run_id))
            if run is None:
                run = Run(id=run_id, name=name, config=config, state="running", team=team, replay_of=replay_of)
                s.add(run)
            else:  # a resumed run keeps its history
                run.state = "running"
            s.flush()
            return run

    def get_run(self, run_id: str, team: str = "default", *, any_team: bool = False) -> Run:
        """`team`'s run `run_id`. With `any_team` (admin reads) and no such run: the run of
        that id of whichever one team holds it. Raises RunNotFoundError, or
        AmbiguousRunError (message names the teams) when several teams hold it."""
        with self._sessions() as s:
            run = s.get(Run, (team, run_id))
            if run is None and any_team:
                runs = list(s.scalars(select(Run).where(Run.id == run_id).order_by(Run.team).limit(11)))
                if len(runs) > 1:
                    teams = ", ".join(r.team for r in runs[:10]) + (", ..." if len(runs) > 10 else "")
                    raise AmbiguousRunError(f"run_id {run_id!r} names runs of several teams ({teams}): "
                                            "set team to say whose")
                run = runs[0] if runs else None
            if run is None:
                raise RunNotFoundError(f"no run with run_id {run_id!r}")
            return run

    def log_step(self, run_id: str, step: int, metrics: dict[str, float], team: str = "default") -> None:
        """Record (or merge into) a step's metrics. Two calls for one new step at once: the
        loser of the insert race merges into the winner's row. Raises RunNotFoundError, and
        TooLargeError when the merged metrics would pass STEP_METRICS_MAX(_BYTES)."""
        # SQLite reads before it locks: merges into one run's steps in this process go one at a time.
        with self._step_locks[hash((team, run_id)) % len(self._step_locks)]:
            try:
                self._log_step(team, run_id, step, metrics)
            except sa_exc.IntegrityError:
                self._log_step(team, run_id, step, metrics)

    def _log_step(self, team: str, run_id: str, step: int, metrics: dict[str, float]) -> None:
        with self._sessions.begin() as s:
            if s.get(Run, (team, run_id)) is None:
                raise RunNotFoundError(f"no run with run_id {run_id!r}; call StartRun first")
            row = s.scalar(select(StepRow).where(StepRow.team == team, StepRow.run_id == run_id,
                                                 StepRow.step == step)
                           .with_for_update())  # PostgreSQL: another replica's merge waits
            if row is None:
                s.add(StepRow(team=team, run_id=run_id, step=step, metrics=metrics))
            else:
                merged = {**row.metrics, **metrics}
                size = len(json.dumps(merged))
                if len(merged) > STEP_METRICS_MAX or size > STEP_METRICS_MAX_BYTES:
                    raise TooLargeError(f"metrics: step {step} of run {run_id!r} would hold {len(merged)} metrics, "
                                        f"{size} bytes as JSON, once merged; the limit is {STEP_METRICS_MAX} "
                                        f"metrics and {STEP_METRICS_MAX_BYTES} bytes per step")
                row.metrics = merged

    def finish_run(self, run_id: str, state: str, summary: dict[str, float], team: str = "default") -> Run:
        with self._sessions.begin() as s:
            run = s.get(Run, (team, run_id))
            if run is None:
                raise RunNotFoundError(f"no run with run_id {run_id!r}")
            run.state, run.summary, run.finished_at = state, summary, datetime.now(timezone.utc)
            s.flush()
            return run

    def group_signature(self, run_id: str, step: int, group_id: str, team: str = "default") -> set[tuple]:
        """What is stored for `team`'s group: {(sample_index, component_index, verifier,
        params_hash, weight, gate, prompt_sha256, completion_sha256, reference_sha256)};
        empty when nothing is."""
        c = ScoreRow
        with self._sessions() as s:
            return {tuple(r) for r in s.execute(
                select(c.sample_index, c.component_index, c.verifier, c.params_hash, c.weight, c.gate,
                       c.prompt_sha256, c.completion_sha256, c.reference_sha256)
                .where(c.team == team, c.run_id == run_id, c.step == step, c.group_id == group_id))}

    def run_stats(self, run_id: str, team: str = "default") -> tuple[int, int]:
        """(last logged step or -1, number of score rows) of `team`'s run."""
        with self._sessions() as s:
            last = s.scalar(select(func.max(StepRow.step)).where(StepRow.team == team, StepRow.run_id == run_id))
            count = s.scalar(select(func.count()).select_from(ScoreRow)
                             .where(ScoreRow.run_id == run_id, ScoreRow.team == team))
            return (-1 if last is None else last), int(count or 0)

    def list_runs(self, limit: int = 100, team: str | None = None) -> list[Run]:
        q = select(Run).order_by(Run.created_at.desc()).limit(limit)
        if team is not None:
            q = q.where(Run.team == team)
        with self._sessions() as s:
            return list(s.scalars(q))

    def steps(self, run_id: str, team: str = "default", *, after_step: int | None = None,
              limit: int | None = None) -> list[StepRow]:
        """`team`'s run's steps, by step: those after `after_step` (keyset paging), at most `limit`."""
        q = select(StepRow).where(StepRow.team == team, StepRow.run_id == run_id)
        if after_step is not None:
            q = q.where(StepRow.step > after_step)
        q = q.order_by(StepRow.step)
        if limit is not None:
            q = q.limit(limit)
        with self._sessions() as s:
            return list(s.scalars(q))

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
    def get_score(self, score_id: int, team: str | None = None, flush: bool = True) -> ScoreRow:
        if flush:
            self.flush()
        with self._sessions() as s:
            row = s.get(ScoreRow, score_id)
        if row is None or (team is not None and row.team != team):
            raise ScoreNotFoundError(f"no score with score_id {score_id}")
        return row

    def query_scores(self, *, chunk_rows: int = 1000, **filters: Any) -> Iterator[ScoreRow]:
        """Stored score rows in id order, filtered (the filters of `score_pages`)."""
        for page in self.score_pages(page_rows=chunk_rows, **filters):
            yield from page

    def score_pages(self, *, run_id: str | None = None, step_min: int | None = None,
                    step_max: int | None = None, verifier: str | None = None,
                    status: str | None = None, limit: int | None = None, team: str | None = None,
                    created_after: datetime | None = None, created_before: datetime | None = None,
                    reward_min: float | None = None, reward_max: float | None = None,
                    page_rows: int = 1000, flush: bool = True) -> Iterator[list[ScoreRow]]:
        """Stored score rows in id order, filtered, as lists of at most `page_rows`.

        Each page is its own query (rows with an id above the last one returned) on a
        connection given back before the page is returned, so a reader that stops reading
        holds no connection. `team=None` means every team (admins; with `run_id`, every
        team's run of that id: each row names its team); otherwise only that team's rows.
        Rows committed while paging may appear if their id is higher. `flush`: first wait
        for the rows queued before the call.
        """
        if flush:
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
        last, left = None, limit or None
        while True:
            n = page_rows if left is None else min(page_rows, left)
            page_q = q if last is None else q.where(ScoreRow.id > last)
            with self._sessions() as s:
                page = list(s.scalars(page_q.order_by(ScoreRow.id).limit(n)))
            if page:
                yield page
                last = page[-1].id
                if left is not None:
                    left -= len(page)
            if len(page) < n or left == 0:
                return

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
