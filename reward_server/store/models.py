"""ORM tables. Schema changes go through an Alembic migration in reward_server/migrations."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        String, Text, UniqueConstraint)
from sqlalchemy.sql import false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Run(Base):
    """A training run: what its scores and steps hang from. Run ids are per team: the key
    is (team, id), so two teams may each have a run "exp-1" and neither can tell."""

    __tablename__ = "runs"
    team: Mapped[str] = mapped_column(String(64), primary_key=True, default="default", server_default="default")
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    replay_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StepRow(Base):
    """One training step's metrics, as the trainer logged them."""

    __tablename__ = "steps"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        ForeignKeyConstraint(["team", "run_id"], ["runs.team", "runs.id"], name="fk_steps_run", ondelete="CASCADE"),
        UniqueConstraint("team", "run_id", "step", name="uq_steps_run_step"),
    )


SAMPLE_KEY_WHERE = "run_id IS NOT NULL AND step IS NOT NULL AND group_id <> ''"
SAMPLE_KEY = ("team", "run_id", "step", "group_id", "sample_index", "component_index")


class ScoreRow(Base):
    """One scored sample component, with everything needed to answer "why this reward?".

    A sample scored by a spec of k components is k rows sharing (request_id,
    sample_index); `total_reward`/`total_status` repeat the sample's combined outcome.
    """

    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    request_id: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[str] = mapped_column(String(128), default="")
    sample_index: Mapped[int] = mapped_column(Integer)
    sample_id: Mapped[str] = mapped_column(String(128), default="")
    component_index: Mapped[int] = mapped_column(Integer)
    verifier: Mapped[str] = mapped_column(String(64))
    verifier_version: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    params_hash: Mapped[str] = mapped_column(String(16))
    weight: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8))
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float] = mapped_column(Float)
    total_status: Mapped[str] = mapped_column(String(8))
    total_reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    completion_sha256: Mapped[str] = mapped_column(String(64))
    reference_sha256: Mapped[str] = mapped_column(String(64))
    prompt_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    completion_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reference_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    texts_dropped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    worker: Mapped[str] = mapped_column(String(64), default="")
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    gate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    spec_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    spec_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        # Led by run_id, not team: an admin's read of one run id across teams uses them too;
        # a team's read filters its rows out of the few teams sharing that id.
        Index("ix_scores_run_step", "run_id", "step"),
        Index("ix_scores_run_id_id", "run_id", "id"),  # history pages: a run's rows after an id
        Index("ix_scores_verifier_created", "verifier", "created_at"),
        Index("ix_scores_created", "created_at"),
        Index("ix_scores_team_created", "team", "created_at"),
        # One row per (team, run, step, group, sample, component): a group the trainer re-sends
        # after an outage is scored again but stored once (the first write wins).
        Index("uq_scores_run_sample", *SAMPLE_KEY,
              unique=True, sqlite_where=text(SAMPLE_KEY_WHERE), postgresql_where=text(SAMPLE_KEY_WHERE)),
    )


class SpecRow(Base):
    """A named reward spec, one row per version; versions are never changed or deleted."""

    __tablename__ = "reward_specs"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    body_sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("name", "version", name="uq_reward_specs_name_version"),)


class Team(Base):
    __tablename__ = "teams"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key: only a salted SHA-256 of the secret is kept; `prefix` identifies it in listings."""

    __tablename__ = "api_keys"
    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    team: Mapped[str] = mapped_column(ForeignKey("teams.name"))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    salt: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(16), nullable=True)


class RetentionEvent(Base):
    """One application of the retention policy: what was dropped, when, and up to which time."""

    __tablename__ = "retention_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows_affected: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32), default="drop_texts")


class QuotaBucket(Base):
    """One team's token bucket for one limited resource, shared by every replica on this
    database (reward_server.quotas.DatabaseBackend); `stamp` is the database clock, epoch s.
    A counter's row (kind `streams`, `inflight`) holds in `tokens` the amount its leases hold."""

    __tablename__ = "quota_buckets"
    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)


class QuotaLease(Base):
    """A held slot of a team's counter (one open stream, or a request's samples in flight),
    renewed by the replica holding it; it stops counting at `expires_at` (database clock,
    epoch s), so a crashed replica's slots lapse."""

    __tablename__ = "quota_leases"
    __table_args__ = (Index("ix_quota_leases_team_kind", "team", "kind"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Integer)
    replica: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[float] = mapped_column(Float)
