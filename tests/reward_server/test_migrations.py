"""The Alembic migrations build exactly the schema the ORM models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reward_server.store import Base
from reward_server.store.store import make_engine, schema_revisions, upgrade_schema


def test_migrations_match_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade_schema(engine)
    current, head = schema_revisions(engine)
    assert current == head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
    engine.dispose()
