"""The score store: every score with its provenance, through SQLAlchemy 2 (SQLite or PostgreSQL)."""
from .models import Base, Run, ScoreRow, StepRow
from .store import SchemaOutOfDateError, ScoreStore

__all__ = ["Base", "Run", "ScoreRow", "StepRow", "ScoreStore", "SchemaOutOfDateError"]
