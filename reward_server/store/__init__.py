"""The score store: every score with its provenance, through SQLAlchemy 2 (SQLite or PostgreSQL)."""
from .models import Base, Run, ScoreRow, SpecRow, StepRow
from .store import SchemaOutOfDateError, ScoreStore

__all__ = ["Base", "Run", "ScoreRow", "StepRow", "SpecRow", "ScoreStore", "SchemaOutOfDateError"]
