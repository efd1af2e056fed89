"""`reward-server`: run the service, or manage its database schema.

    reward-server [--config FILE] [--host HOST] [--port PORT] [--http-port PORT] [--metrics-port PORT]
                  [--database-url URL] [--workers N]
    reward-server db upgrade [--config FILE] [--database-url URL]
    reward-server db current [--config FILE] [--database-url URL]
"""
from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config


def _common(p: argparse.ArgumentParser, sub: bool = False) -> None:
    # A subcommand's copy of an option must not reset what was given before the subcommand
    # (`reward-server --config F keys create`): its default is "not given".
    default = argparse.SUPPRESS if sub else None
    p.add_argument("--config", default=default, help="TOML config file (env REWARD_SERVER_CONFIG)")
    p.add_argument("--database-url", default=default, help="SQLAlchemy URL (env REWARD_SERVER_DATABASE_URL)")
    p.add_argument("--log-level", default=default if sub else "INFO")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="reward-server", description="gRPC reward-and-verifier service")
    _common(ap)
    ap.add_argument("--host", help="bind address (env REWARD_SERVER_HOST, default 127.0.0.1)")
    ap.add_argument("--port", type=int, help="port (env REWARD_SERVER_PORT, default 50051; 0 = any free port)")
    ap.add_argument("--http-port", type=int, help="HTTP/JSON face: POST /v1/score, POST /openrlhf/SPEC, GET /healthz "
                    "(env REWARD_SERVER_HTTP_PORT, default 0 = off)")
    ap.add_argument("--metrics-port", type=int, help="Prometheus GET /metrics (env REWARD_SERVER_METRICS_PORT, "
                    "default 0 = off)")
    ap.add_argument("--workers", type=int, help="verifier worker processes (env REWARD_SERVER_WORKERS)")
    ap.add_argument("--ready-file", help="write the bound port to this file once serving")
    sub = ap.add_subparsers(dest="command")
    db = sub.add_parser("db", help="database schema (Alembic) and retention")
    db.add_argument("action", choices=["upgrade", "current", "retention"])
    db.add_argument("--days", type=float, help="retention: drop texts older than this (default: config)")
    _common(db, sub=True)
    hc = sub.add_parser("health", help="exit 0 when the server at --address reports SERVING (container health checks)")
    hc.add_argument("--address", default="127.0.0.1:50051")
    hc.add_argument("--tls-ca", help="PEM CA certificate when the server uses TLS")
    hc.add_argument("--timeout-s", type=float, default=3.0)
    keys = sub.add_parser("keys", help="teams' API keys")
    keys.add_argument("action", choices=["create", "list", "revoke", "rotate"])
    keys.add_argument("prefix", nargs="?", help="revoke/rotate: the key's prefix (from `keys list`)")
    keys.add_argument("--team", help="create: the key's team (created if new); list: only this team")
    keys.add_argument("--admin", action="store_true", help="create: an admin key")
    keys.add_argument("--label", default="", help="create: a note (who holds it)")
    _common(keys, sub=True)
    args = ap.parse_args(argv)
    if args.command == "health":
        sys.exit(_health(args))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        overrides: dict = dict(database_url=args.database_url)
        if args.command is None:
            overrides.update(host=args.host, port=args.port, workers=args.workers, http_port=args.http_port,
                             metrics_port=args.metrics_port)
        config = load_config(args.config, **overrides)
    except ConfigError as e:
        sys.exit(f"reward-server: {e}")

    if args.command == "db":
        return _db(args, config)
    if args.command == "keys":
        return _keys(args, config)

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


def _health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            ch = grpc.secure_channel(args.address, grpc.ssl_channel_credentials(f.read()))
    else:
        ch = grpc.insecure_channel(args.address)
    try:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="rewards.v1.RewardService"),
                                                      timeout=args.timeout_s).status
    except grpc.RpcError as e:
        print(f"unhealthy: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        ch.close()
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


def _db(args: argparse.Namespace, config) -> None:
    from .store.store import make_engine, redact_url, schema_revisions, upgrade_schema

    if args.action == "retention":
        from datetime import datetime, timedelta, timezone

        days = args.days or config.retention_days
        if not days:
            sys.exit("reward-server: give --days N or set retention_days in the config")
        store = _open_store(config)
        n = store.drop_texts_before(datetime.now(timezone.utc) - timedelta(days=days))
        store.close()
        print(f"dropped the texts of {n} score rows older than {days:g} days (hashes, rewards and provenance kept)")
        return
    engine = make_engine(config.database_url)
    if args.action == "upgrade":
        upgrade_schema(engine)
    current, head = schema_revisions(engine)
    print(f"database {redact_url(config.database_url)}: revision {current or 'none'} (newest {head})")


def _open_store(config):
    from .store import SchemaOutOfDateError, ScoreStore

    try:
        return ScoreStore(config.database_url, auto_migrate=config.migrate_on_start)
    except SchemaOutOfDateError as e:
        sys.exit(f"reward-server: {e}")


def _keys(args: argparse.Namespace, config) -> None:
    from .auth import KeyStore

    store = _open_store(config)
    keys = KeyStore(store)
    try:
        if args.action == "create":
            if not args.team:
                sys.exit("reward-server: keys create needs --team NAME")
            key, row = keys.create(args.team, admin=args.admin, label=args.label)
            print(key)
            print(f"# team {row.team}{' (admin)' if row.admin else ''}, prefix {row.prefix}: "
                  "shown once; only a salted hash is stored", file=sys.stderr)
        elif args.action == "list":
            for k in keys.list(args.team):
                state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                print(f"{k.prefix}  team={k.team}  {'admin' if k.admin else 'user'}  {state}  "
                      f"created {k.created_at:%Y-%m-%d}  {k.label}")
        else:
            if not args.prefix:
                sys.exit(f"reward-server: keys {args.action} needs the key's PREFIX")
            try:
                if args.action == "revoke":
                    keys.revoke(args.prefix)
                    print(f"revoked {args.prefix}")
                else:
                    key, row = keys.rotate(args.prefix)
                    print(key)
                    print(f"# {args.prefix} revoked; new prefix {row.prefix}", file=sys.stderr)
            except KeyError as e:
                sys.exit(f"reward-server: {e.args[0]}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
