"""`reward-server`: run the service, or manage its database schema.

    reward-server [--config FILE] [--host HOST] [--port PORT] [--database-url URL] [--workers N]
    reward-server db upgrade [--config FILE] [--database-url URL]
    reward-server db current [--config FILE] [--database-url URL]
"""
from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (env REWARD_SERVER_CONFIG)")
    p.add_argument("--database-url", help="SQLAlchemy URL (env REWARD_SERVER_DATABASE_URL)")
    p.add_argument("--log-level", default="INFO")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="reward-server", description="gRPC reward-and-verifier service")
    _common(ap)
    ap.add_argument("--host", help="bind address (env REWARD_SERVER_HOST, default 127.0.0.1)")
    ap.add_argument("--port", type=int, help="port (env REWARD_SERVER_PORT, default 50051; 0 = any free port)")
    ap.add_argument("--workers", type=int, help="verifier worker processes (env REWARD_SERVER_WORKERS)")
    ap.add_argument("--ready-file", help="write the bound port to this file once serving")
    sub = ap.add_subparsers(dest="command")
    db = sub.add_parser("db", help="database schema (Alembic)")
    db.add_argument("action", choices=["upgrade", "current"])
    _common(db)
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        overrides = dict(database_url=args.database_url)
        if args.command is None:
            overrides.update(host=args.host, port=args.port, workers=args.workers)
        config = load_config(args.config, **overrides)
    except ConfigError as e:
        sys.exit(f"reward-server: {e}")

    if args.command == "db":
        from .store.store import make_engine, schema_revisions, upgrade_schema

        engine = make_engine(config.database_url)
        if args.action == "upgrade":
            upgrade_schema(engine)
        current, head = schema_revisions(engine)
        print(f"database {config.database_url}: revision {current or 'none'} (newest {head})")
        return

    from .app import serve
    from .store import SchemaOutOfDateError

    def ready(port: int) -> None:
        print(f"reward-server listening on {config.host}:{port}", flush=True)
        if args.ready_file:
            with open(args.ready_file, "w") as f:
                f.write(str(port))

    try:
        serve(config, ready=ready)
    except (SchemaOutOfDateError, ConfigError) as e:
        sys.exit(f"reward-server: {e}")
    except OSError as e:
        sys.exit(f"reward-server: {e}")


if __name__ == "__main__":
    main()
