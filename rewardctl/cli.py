"""`rewardctl`: score files, list verifiers, and read, report and replay the reward history.

    rewardctl score FILE.jsonl [--server HOST:PORT] [-o OUT.jsonl]
    rewardctl verifiers [--server HOST:PORT] [--all-versions]
    rewardctl runs --server HOST:PORT
    rewardctl history [--run ID] [--step-min N] [--step-max N] [--verifier NAME] [--status S]
                      [--since RFC3339] [--until RFC3339] [--reward-min X] [--reward-max X]
                      [--team TEAM|*] [--format table|jsonl|csv] --server HOST:PORT
    rewardctl show SCORE_ID [--format text|json] --server HOST:PORT
    rewardctl report RUN [-o report.html] [--correctness math,code] --server HOST:PORT
    rewardctl replay RUN --verifier NAME[@VERSION] [--params JSON] [--name NAME]
                     [--pass-threshold 0.5] [--format text|json] --server HOST:PORT

`--api-key` (default $REWARD_API_KEY) and `--tls-ca` go before or after the subcommand;
a usage error never prints the key back. `--server` defaults to $REWARD_SERVER_ADDRESS
($REWARDCTL_CONNECT_TIMEOUT_S, default 10 s, bounds the wait for it); `score` and `verifiers` run in-process
when neither is given. The audit commands (show, report, replay) live in
`rewardctl.audit`; this module only parses, connects and prints. Output into a pipe
whose reader stops early (`rewardctl history ... | head`) ends quietly with status 141.

Input line of `score`: {"completion": str, "reference": str|object, "verifier": str,
"params": object?, "prompt": str?, "id": any?} or, for a weighted spec,
"verifiers": [{"name", "version"?, "weight"?, "params"?, "gate"?, "gate_min"?}] (any other
field is an error on that line). Output line: the input plus "reward"
(float|null), "status", "reason", "components" and "latency_ms". A bad line does not stop
the file: its output line carries the error status (INVALID_ARGUMENT, NOT_FOUND) and why.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn, TextIO

import grpc
from google.protobuf import json_format
from tqdm import tqdm

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from rlvr_integrations.client import make_channel

from reward_server.errors import status_code_for

STATUS_NAMES = {pb.STATUS_OK: "OK", pb.STATUS_ABSTAIN: "ABSTAIN", pb.STATUS_TIMEOUT: "TIMEOUT",
                pb.STATUS_ERROR: "ERROR", pb.STATUS_UNSPECIFIED: "UNSPECIFIED"}
BATCH = 256


class LineError(ValueError):
    pass


COMPONENT_FIELDS = ("name", "version", "weight", "params", "gate", "gate_min")


def _component(c: Any, where: str, spec: pb.RewardSpec) -> None:
    """Add one `{name, version?, weight?, params?, gate?, gate_min?}` to `spec`. Raises
    LineError naming the field: an unknown field is an error, never dropped (a dropped
    `gate` changed the reward silently)."""
    if not isinstance(c, dict):
        raise LineError(f"{where}: a {{{', '.join(COMPONENT_FIELDS)}}} object")
    unknown = sorted(set(c) - set(COMPONENT_FIELDS))
    if unknown:
        raise LineError(f"{where}.{unknown[0]}: unknown field; a verifier takes {', '.join(COMPONENT_FIELDS)}")
    if not isinstance(c.get("name"), str) or not c["name"]:
        raise LineError(f"{where}.name: required, a verifier name")
    if not isinstance(c.get("version", ""), str):
        raise LineError(f"{where}.version: a string such as \"2.1.0\"")
    params = c.get("params")
    if params is not None and not isinstance(params, dict):
        raise LineError(f"{where}.params: a JSON object of the verifier's parameters, not {type(params).__name__}")
    ref = spec.components.add(name=c["name"], version=c.get("version", ""))
    for field in ("weight", "gate_min"):
        if field in c:
            value = c[field]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LineError(f"{where}.{field}: a number, not {json.dumps(value)}")
            if field == "weight":
                ref.weight, ref.weight_set = float(value), True
            else:
                ref.gate_min = float(value)
    if "gate" in c:
        if not isinstance(c["gate"], bool):
            raise LineError(f"{where}.gate: true or false")
        ref.gate = c["gate"]
    if params:
        ref.params.update(params)


def line_to_sample(obj: Any, lineno: int) -> pb.Sample:
    """One JSONL object -> a Sample with its own spec. Raises LineError naming the line and
    the field."""
    where = f"line {lineno}"
    if not isinstance(obj, dict):
        raise LineError(f"{where}: expected a JSON object")
    if not isinstance(obj.get("completion"), str):
        raise LineError(f"{where}: completion: required, a string")
    spec = pb.RewardSpec()
    if "verifiers" in obj:
        if not isinstance(obj["verifiers"], list) or not obj["verifiers"]:
            raise LineError(f"{where}: verifiers: a non-empty list of {{{', '.join(COMPONENT_FIELDS)}}} objects")
        for i, c in enumerate(obj["verifiers"]):
            _component(c, f"{where}: verifiers[{i}]", spec)
    elif isinstance(obj.get("verifier"), str):
        _component({"name": obj["verifier"], **({"params": obj["params"]} if "params" in obj else {})},
                   f"{where}: verifier", spec)
    else:
        raise LineError(f"{where}: verifier: required (a name), or verifiers: [...]")
    sample = pb.Sample(id=str(obj.get("id", lineno)), prompt=str(obj.get("prompt", "")),
                       completion=obj["completion"], spec=spec)
    if obj.get("reference") is not None:
        json_format.ParseDict(obj["reference"], sample.reference)
    return sample


def result_to_json(r: pb.SampleResult) -> dict[str, Any]:
    return {"reward": r.reward if r.HasField("reward") else None, "status": STATUS_NAMES[r.status],
            "reason": r.reason,
            "components": [{"name": c.name, "version": c.version, "weight": c.weight,
                            "status": STATUS_NAMES[c.status], "reward": c.reward if c.HasField("reward") else None,
                            "reason": c.reason, "latency_ms": round(c.latency_ms, 3)} for c in r.components],
            "latency_ms": round(r.latency_ms, 3)}


class _RemoteScorer:
    def __init__(self, address: str):
        self.stub = pb_grpc.RewardServiceStub(_channel(address))

    def score(self, samples: list[pb.Sample]) -> list[dict[str, Any]]:
        try:
            resp = self.stub.Score(pb.ScoreRequest(samples=samples), timeout=600)
            return [result_to_json(r) for r in resp.results]
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND) or len(samples) == 1:
                if len(samples) == 1:
                    return [{"reward": None, "status": e.code().name, "reason": e.details()}]
                raise
        # One bad line fails the batch: score line by line to pin it down.
        return [self.score([s])[0] for s in samples]


class _LocalScorer:
    """The server's own scoring path (validation, pool, combination) without gRPC or a store."""

    def __init__(self, workers: int):
        from verifiers.sandbox.admission import default_sandbox_threads

        from reward_server.scoring import Scorer

        # sandbox threads: at least the sandbox's runs in flight (sleepers hold a thread, not a core)
        self.scorer = Scorer(workers, 2 << 30, {"sandbox": max(workers, default_sandbox_threads())})
        self.loop = asyncio.new_event_loop()

    def score(self, samples: list[pb.Sample]) -> list[dict[str, Any]]:
        from reward_server import convert

        out: list[dict[str, Any] | None] = [None] * len(samples)
        valid = []
        for i, s in enumerate(samples):
            try:
                valid.append((i, convert.samples_from_pb([s], pb.RewardSpec(), "line", None)[0]))
            except Exception as e:
                code = status_code_for(e)
                if code is None:
                    raise
                out[i] = {"reward": None, "status": code.name, "reason": str(e)}
        outcomes = self.loop.run_until_complete(self.scorer.score_many([s for _, s in valid]))
        for (i, _), o in zip(valid, outcomes):
            out[i] = result_to_json(convert.outcome_to_pb(o))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self.scorer.close()
        self.loop.close()


CONNECT_TIMEOUT_S = float(os.environ.get("REWARDCTL_CONNECT_TIMEOUT_S", "10"))
CREDENTIALS: dict[str, str | None] = {"api_key": None, "tls_ca": None}


def _channel(address: str) -> grpc.Channel:
    ch = make_channel(address, CREDENTIALS["tls_ca"], api_key=CREDENTIALS["api_key"],
                      options=[("grpc.max_receive_message_length", 64 << 20)])
    try:
        grpc.channel_ready_future(ch).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        sys.exit(f"rewardctl: no reward server answers at {address} (start one with `reward-server`)")
    return ch


def _read_lines(f: TextIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:  # without its line ending: an error at the end of the line is in its last column
            yield n, json.loads(line.rstrip("\r\n")), None
        except json.JSONDecodeError as e:
            yield n, None, f"line {n}: not valid JSON: {e.msg} at column {e.colno}"


def cmd_score(args: argparse.Namespace) -> int:
    scorer: Any = _RemoteScorer(args.server) if args.server else _LocalScorer(args.workers)
    out = open(args.output, "w") if args.output else sys.stdout
    counts: Counter[str] = Counter()
    rewards: list[float] = []
    with open(args.file) as f:
        total = sum(1 for line in f if line.strip())
    with open(args.file) as f, tqdm(total=total, unit="sample", disable=None, file=sys.stderr) as bar:
        batch: list[tuple[dict[str, Any], pb.Sample | None, str | None]] = []

        def flush() -> None:
            samples = [s for _, s, _ in batch if s is not None]
            results = iter(scorer.score(samples) if samples else [])
            for obj, s, err in batch:
                res = next(results) if s is not None else {"reward": None, "status": "INVALID_ARGUMENT", "reason": err}
                counts[res["status"]] += 1
                if res["reward"] is not None:
                    rewards.append(res["reward"])
                out.write(json.dumps({**obj, **res}) + "\n")
            bar.update(len(batch))
            batch.clear()

        for n, obj, err in _read_lines(f):
            if obj is None:
                batch.append(({"line": n}, None, err))
            else:
                try:
                    batch.append((obj if isinstance(obj, dict) else {"line": n, "value": obj},
                                  line_to_sample(obj, n), None))
                except (LineError, ValueError, TypeError, json_format.ParseError) as e:
                    batch.append((obj if isinstance(obj, dict) else {"line": n}, None, str(e)))
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    if args.output:
        out.close()
    if isinstance(scorer, _LocalScorer):
        scorer.close()
    mean = sum(rewards) / len(rewards) if rewards else float("nan")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    print(f"scored {sum(counts.values())} samples ({summary}); mean reward of OK samples {mean:.4f}", file=sys.stderr)
    return 0


def print_table(table: Any) -> None:
    """Print a rich Table on stdout line by line. Rich renders a table whole and writes it in
    one call, and a single large write into a pipe whose reader has gone (`| head`) can end
    without BrokenPipeError; line by line the closed pipe is seen as in the other formats."""
    from rich.console import Console

    console = Console()
    with console.capture() as captured:      # keeps the terminal's width and colours
        console.print(table)
    for line in captured.get().splitlines(keepends=True):
        sys.stdout.write(line)


def cmd_verifiers(args: argparse.Namespace) -> int:
    from rich.table import Table

    def version(v: str, latest: bool) -> str:
        return v + (" (latest)" if latest and args.all_versions else "")

    if args.server:
        request = pb.ListVerifiersRequest(all_versions=args.all_versions)
        infos = pb_grpc.RewardServiceStub(_channel(args.server)).ListVerifiers(request).verifiers
        rows = [(v.name, version(v.version, v.latest), "yes" if v.available else f"no: {v.unavailable_reason}",
                 ", ".join(f"{p.name}: {p.type} = {p.default_json}" for p in v.params), v.description) for v in infos]
    else:
        from verifiers import registry

        rows = []
        for cls in registry.all_versions() if args.all_versions else registry.latest():
            ok, why = cls.available()
            params = ", ".join(f"{n}: {t} = {d}" for n, t, d, _ in registry.describe_params(cls))
            rows.append((cls.name, version(cls.version, registry.is_latest(cls)), "yes" if ok else f"no: {why}",
                         params, cls.description))
    table = Table("verifier", "version", "available", "parameters", "description")
    for r in rows:
        table.add_row(*r)
    print_table(table)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    runs = pb_grpc.RewardServiceStub(_channel(args.server)).ListRuns(pb.ListRunsRequest(limit=args.limit)).runs
    table = Table("run_id", "name", "state", "created", "last step", "scores")
    for r in runs:
        table.add_row(r.run_id, r.name, r.state, r.created_at[:19], str(r.last_step), str(r.score_count))
    print_table(table)
    return 0


HISTORY_FIELDS = ["score_id", "run_id", "step", "group_id", "sample_index", "verifier", "verifier_version",
                  "status", "reward", "total_reward", "reason", "latency_ms", "cached", "completion_sha256",
                  "created_at", "team"]


def history_request(args: argparse.Namespace) -> pb.QueryScoresRequest:
    """The QueryScores filters of `history`. Raises ValueError for a bad time."""
    from .audit.records import parse_time

    req = pb.QueryScoresRequest(run_id=args.run or "", verifier=args.verifier or "", limit=args.limit,
                                team=args.team or "")
    if args.step_min is not None:
        req.step_min = args.step_min
    if args.step_max is not None:
        req.step_max = args.step_max
    if args.status:
        req.status = pb.Status.Value(f"STATUS_{args.status.upper()}")
    if args.since:
        req.created_after = parse_time(args.since, "--since")
    if args.until:
        req.created_before = parse_time(args.until, "--until")
    if args.reward_min is not None:
        req.reward_min = args.reward_min
    if args.reward_max is not None:
        req.reward_max = args.reward_max
    return req


def cmd_history(args: argparse.Namespace) -> int:
    try:
        req = history_request(args)
    except ValueError as e:
        sys.exit(f"rewardctl: {e}")
    stub = pb_grpc.RewardServiceStub(_channel(args.server))
    if args.run:  # an unknown run is NOT_FOUND (exit 1) as in show and report, not an empty table
        stub.GetRun(pb.GetRunRequest(run_id=args.run))
    found = 0

    def counted(stream: Iterator[pb.ScoreRecord]) -> Iterator[pb.ScoreRecord]:
        nonlocal found
        for r in stream:
            found += 1
            yield r

    def check_verifier() -> None:
        # Only when nothing matched: a verifier no longer registered may still be in the history.
        if found or not args.verifier:
            return
        names = {v.name for v in stub.ListVerifiers(pb.ListVerifiersRequest(all_versions=True)).verifiers}
        if args.verifier not in names:
            sys.exit(f"rewardctl: NOT_FOUND: no verifier named {args.verifier!r} (known: {', '.join(sorted(names))})")

    records = counted(stub.QueryScores(req))

    def as_dict(r: pb.ScoreRecord) -> dict[str, Any]:
        d = {k: getattr(r, k) for k in HISTORY_FIELDS}
        d["status"] = STATUS_NAMES[r.status]
        d["reward"] = r.reward if r.HasField("reward") else None
        d["total_reward"] = r.total_reward if r.HasField("total_reward") else None
        return d

    if args.format == "jsonl":
        for r in records:
            print(json.dumps(as_dict(r)))
    elif args.format == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=HISTORY_FIELDS)
        w.writeheader()
        for r in records:
            w.writerow(as_dict(r))
    else:
        from rich.table import Table

        cols = ["score_id", "step", "group_id", "sample_index", "verifier", "status", "reward", "cached", "reason"]
        if not args.run:
            cols.insert(1, "run_id")
        if args.team:
            cols.insert(1, "team")
        table = Table(*cols)
        for r in records:
            d = as_dict(r)
            table.add_row(*(str(d[c])[:60] for c in cols))
        check_verifier()
        print_table(table)
    check_verifier()
    return 0


def _stub(args: argparse.Namespace) -> pb_grpc.RewardServiceStub:
    return pb_grpc.RewardServiceStub(_channel(args.server))


def cmd_show(args: argparse.Namespace) -> int:
    from .audit import show

    stub = _stub(args)
    rec = stub.GetScore(pb.GetScoreRequest(score_id=args.score_id))
    p = show.provenance(rec, show.fetch_siblings(stub, rec))
    print(json.dumps(p, indent=2) if args.format == "json" else show.render_text(p))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .audit import report

    correctness = tuple(x.strip() for x in args.correctness.split(",") if x.strip())
    data = report.fetch_run(_stub(args), args.run, texts=False if args.no_texts else None)
    rep = report.build_report(data, correctness=correctness, source=args.server)
    out = args.output or f"report-{args.run}.html"
    with open(out, "w", encoding="utf-8") as f:
        f.write(report.render_html(rep))
    raised = [x for x in rep.findings if x.state == "raised"]
    print(f"wrote {out}: {len(data.samples)} samples over {len(rep.series.steps)} steps, {len(rep.plots)} plots, "
          f"{len(raised)} flag(s) raised" + "".join(f"\n  FLAG {x.title}: {x.detail}" for x in raised))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .audit import replay

    try:
        spec = replay.VerifierSpec.parse(args.verifier, args.params)
    except ValueError as e:
        sys.exit(f"rewardctl: {e}")
    with tqdm(unit="sample", disable=None, file=sys.stderr, desc="replay") as bar:
        try:
            result = replay.replay(_stub(args), args.run, spec, name=args.name or "", threshold=args.pass_threshold,
                                   max_examples=args.examples, chunk_samples=args.chunk, progress=bar.update)
        except replay.ReplayError as e:
            sys.exit(f"rewardctl: {e}")
    print(json.dumps(result.as_dict(), indent=2) if args.format == "json" else result.render_text())
    return 0 if result.replay_run is not None else 1


def secrets_in(argv: list[str]) -> list[str]:
    """The API keys on a command line: the value of `--api-key KEY`, `--api-key=KEY` and of
    the abbreviations argparse accepts (`--api KEY`)."""
    found = []
    for i, token in enumerate(argv):
        name, eq, value = token.partition("=")
        if len(name) >= len("--a") and "--api-key".startswith(name) and name.startswith("--a"):
            if eq:
                found.append(value)
            elif i + 1 < len(argv):
                found.append(argv[i + 1])
    return [x for x in found if x]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors never print an API key back (argparse echoes
    what it did not understand, and a terminal or CI log is no place for the key)."""

    secrets: list[str] = []

    def error(self, message: str) -> NoReturn:
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        super().error(message)


def _connection_options() -> argparse.ArgumentParser:
    """--api-key and --tls-ca, accepted before or after the subcommand (after wins)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--api-key", default=argparse.SUPPRESS, help="the team's key (default $REWARD_API_KEY)")
    p.add_argument("--tls-ca", default=argparse.SUPPRESS,
                   help="PEM CA certificate: connect with TLS (default $REWARD_TLS_CA)")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _Parser.secrets = secrets_in(argv) + [v for v in (os.environ.get("REWARD_API_KEY"),) if v]
    ap = _Parser(prog="rewardctl", description=__doc__.split("\n")[0])
    default_server = os.environ.get("REWARD_SERVER_ADDRESS")
    ap.add_argument("--api-key", default=os.environ.get("REWARD_API_KEY"),
                    help="the team's key (default $REWARD_API_KEY); also accepted after the subcommand")
    ap.add_argument("--tls-ca", default=os.environ.get("REWARD_TLS_CA"),
                    help="PEM CA certificate: connect with TLS (default $REWARD_TLS_CA)")
    sub = ap.add_subparsers(dest="command", required=True)
    common = [_connection_options()]
    p = sub.add_parser("score", parents=common, help="score a JSONL file of samples")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="output JSONL (default stdout)")
    p.add_argument("--server", default=default_server,
                   help="HOST:PORT; when omitted, scored in-process by the server's own scoring path (the same "
                        "sandbox, pre-forked interpreters and concurrency: as fast as the service for code)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="in-process: worker processes for isolated verifiers and threads for sandboxed code "
                        "(default: the CPU count)")
    p.set_defaults(fn=cmd_score)
    p = sub.add_parser("verifiers", parents=common, help="list verifiers, versions and parameters")
    p.add_argument("--server", default=default_server)
    p.add_argument("--all-versions", action="store_true",
                   help="also the older versions kept for pinned specs and `replay` (default: the newest)")
    p.set_defaults(fn=cmd_verifiers)
    p = sub.add_parser("runs", parents=common, help="list runs in the store")
    p.add_argument("--server", default=default_server or "127.0.0.1:50051")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(fn=cmd_runs)
    p = sub.add_parser("history", parents=common, help="stored scores, filtered (streamed from the server)")
    p.add_argument("--run", help="a run id (default: every run the team can read)")
    p.add_argument("--step-min", type=int)
    p.add_argument("--step-max", type=int)
    p.add_argument("--verifier")
    p.add_argument("--status", choices=["ok", "abstain", "timeout", "error"])
    p.add_argument("--since", help="scored at or after this RFC 3339 time (2026-11-22T08:00:00Z; naive = UTC)")
    p.add_argument("--until", help="scored before this RFC 3339 time")
    p.add_argument("--reward-min", type=float, help="component reward at least (excludes rows without one)")
    p.add_argument("--reward-max", type=float, help="component reward at most")
    p.add_argument("--team", help="admins: another team's scores, or * for every team")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--format", choices=["table", "jsonl", "csv"], default="table")
    p.add_argument("--server", default=default_server or "127.0.0.1:50051")
    p.set_defaults(fn=cmd_history)
    p = sub.add_parser("show", parents=common,
                       help="one score's full provenance (texts, hashes, verifier, worker, run)")
    p.add_argument("score_id", type=int)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--server", default=default_server or "127.0.0.1:50051")
    p.set_defaults(fn=cmd_show)
    p = sub.add_parser("report", parents=common,
                       help="a self-contained HTML report of a run, with reward-hacking flags")
    p.add_argument("run")
    p.add_argument("-o", "--output", help="HTML file (default report-RUN.html)")
    p.add_argument("--correctness", default="math,code",
                   help="verifiers that measure correctness, comma-separated (default math,code)")
    p.add_argument("--no-texts", action="store_true",
                   help="never fetch completion texts (no length from texts when the trainer logged none)")
    p.add_argument("--server", default=default_server or "127.0.0.1:50051")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("replay", parents=common,
                       help="re-score a run's stored completions into a linked replay run")
    p.add_argument("run")
    p.add_argument("--verifier", required=True, help="NAME or NAME@VERSION (default: the newest version)")
    p.add_argument("--params", help="the verifier's parameters, a JSON object")
    p.add_argument("--name", help="the replay run's name")
    p.add_argument("--pass-threshold", type=float, default=0.5,
                   help="a sample passes when OK with reward >= this; a flip is a pass/fail change (default 0.5)")
    p.add_argument("--examples", type=int, default=5, help="examples shown per kind of change (default 5)")
    p.add_argument("--chunk", type=int, default=256, help="samples per scoring round (default 256)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--server", default=default_server or "127.0.0.1:50051")
    p.set_defaults(fn=cmd_replay)
    args = ap.parse_args(argv)
    CREDENTIALS.update(api_key=args.api_key, tls_ca=args.tls_ca)
    try:
        code = args.fn(args)
        sys.stdout.flush()      # a reader gone away shows here, not at interpreter exit
    except BrokenPipeError:
        _reader_gone()
    except grpc.RpcError as e:
        sys.exit(f"rewardctl: {e.code().name}: {e.details()}")
    sys.exit(code)


SIGPIPE_EXIT = 128 + 13


def _reader_gone() -> NoReturn:
    """stdout's reader closed the pipe (`rewardctl history | head`): stop quietly with the
    status a shell reports for a command ended by SIGPIPE (141, as `yes | head` gives),
    with stdout on /dev/null so that the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(SIGPIPE_EXIT)


if __name__ == "__main__":
    main()
