"""`rewardctl`: the reward service from the shell: score files, runs, stored specs, verifiers,
and read, report and replay the reward history.

    rewardctl score FILE.jsonl [-o OUT.jsonl] [--run RUN --step N] [--resume] [--batch-size 256]
                    [--progress] [--outage-timeout-s 300] [--workers N]
    rewardctl verifiers [--all-versions]
    rewardctl runs [list] [--limit N] [--team TEAM|*]
    rewardctl runs start NAME [--config JSON] [--run-id ID]        prints the run id
    rewardctl runs finish RUN [--state finished|failed] [--summary JSON]
    rewardctl specs list | specs show NAME[@VERSION] | specs put NAME FILE.json|- [--description TEXT]
    rewardctl history [--run ID] [--step-min N] [--step-max N] [--verifier NAME] [--status S]
                      [--since RFC3339] [--until RFC3339] [--reward-min X] [--reward-max X]
                      [--team TEAM|*] [--format table|jsonl|csv]
    rewardctl show SCORE_ID [--format text|json]
    rewardctl report RUN [--team TEAM] [-o report.html] [--correctness math,code]
    rewardctl replay RUN [--team TEAM] --verifier NAME[@VERSION] [--params JSON] [--name NAME]
                     [--pass-threshold 0.5] [--format text|json]

Global options, before or after the subcommand: --server HOST:PORT (default
$REWARD_SERVER_ADDRESS, else 127.0.0.1:50051; `score` and `verifiers` run in-process when
neither is given), --api-key (default $REWARD_API_KEY; a usage error never prints it back),
--tls-ca PEM (default $REWARD_TLS_CA), --outage-timeout-s (how long a call waits out an
unreachable server, default 300). $REWARDCTL_CONNECT_TIMEOUT_S (default 10 s) bounds the
first connection. Run ids are per team: `--team` (admins) says whose run. Every call goes through rewards_client (its channel, retry policy and
conversions); the audit commands live in `rewardctl.audit`; this module parses, calls and
prints. Output into a pipe whose reader stops early (`rewardctl history ... | head`) ends
quietly with status 141.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

from rewards_client import (RewardCallError, RewardClient, RewardServiceError, RewardServiceUnavailable,
                            message_to_dict, status_name)

from .score import BATCH, UsageError, run_score

EXIT_CODES = """exit status:
  0    done (for score: every line scored; a verifier's ABSTAIN/TIMEOUT/ERROR is a score)
  1    some input lines failed (their output lines say why), or replay had nothing to replay
  2    usage: a bad option or value, an unreadable or invalid input file
  3    NOT_FOUND: no such run, score, stored spec or verifier
  4    UNAVAILABLE: no server answers, or it stayed away past --outage-timeout-s
       (score -o OUT --resume goes on where it stopped)
  5    UNAUTHENTICATED / PERMISSION_DENIED: the key is missing, wrong or not allowed
  6    refused: INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS (the message says which field)
  7    any other failure (RESOURCE_EXHAUSTED after the retries, DEADLINE_EXCEEDED, INTERNAL, ...)
  130  interrupted (Ctrl-C)
  141  stdout's reader went away (`| head`)"""

LINE_FORMAT = """input line of score (JSONL; any other field is an error on that line):
  {"completion": str, "id"?: any (default: the line number), "prompt"?: str,
   "reference"?: str|object, "metadata"?: object (e.g. {"task": "math"} picks a route),
   and one of  "verifier": NAME, "params"?: object
          or   "verifiers": [{"name", "version"?, "weight"?, "params"?, "gate"?, "gate_min"?}]
          or   "spec": "NAME" | "NAME@VERSION" (stored on the server) | {"components", "routes"}}
output line: the input plus "reward" (float|null), "status", "reason", "components",
"latency_ms" (+ "spec": "NAME@VERSION" for a stored spec; "stored": true when --resume or a
retry took it from the run's stored scores). A bad line does not stop the file: its output
line carries the error status (INVALID_ARGUMENT, NOT_FOUND) and the line's number."""

EXAMPLES = {
    "score": "rewardctl score samples.jsonl -o scored.jsonl --server 127.0.0.1:50051 --run RUN --step 3",
    "verifiers": "rewardctl verifiers --all-versions",
    "runs": "rewardctl runs --limit 20",
    "runs list": "rewardctl runs list --team '*'",
    "runs start": "rewardctl runs start my-eval --config '{\"model\": \"qwen2.5-0.5b\"}'",
    "runs finish": "rewardctl runs finish RUN --state failed",
    "specs": "rewardctl specs list",
    "specs list": "rewardctl specs list",
    "specs show": "rewardctl specs show math-r1@2",
    "specs put": "rewardctl specs put math-r1 spec.json",
    "history": "rewardctl history --run RUN --step-min 100 --status timeout --format jsonl",
    "show": "rewardctl show 123",
    "report": "rewardctl report RUN -o run.html",
    "replay": "rewardctl replay RUN --verifier math@2.1.0 --params '{\"rounding_sig_digits\": 3}'",
}
EXAMPLES_TEXT = "examples:\n" + "\n".join(f"  {v}" for k, v in EXAMPLES.items()
                                         if k not in ("runs list", "specs"))

CONNECT_TIMEOUT_S = float(os.environ.get("REWARDCTL_CONNECT_TIMEOUT_S", "10"))
DEFAULT_SERVER = "127.0.0.1:50051"
EXIT_BY_CODE = {"NOT_FOUND": 3, "UNAVAILABLE": 4, "UNAUTHENTICATED": 5, "PERMISSION_DENIED": 5,
                "INVALID_ARGUMENT": 6, "FAILED_PRECONDITION": 6, "ALREADY_EXISTS": 6, "OUT_OF_RANGE": 6}


class Failure(Exception):
    """Stop with `message` on stderr and exit status `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def connect(args: argparse.Namespace) -> RewardClient:
    """A client of args.server, connected (Failure 4 when nothing answers)."""
    client = RewardClient(args.server, api_key=args.api_key, tls_ca=args.tls_ca, rpc_timeout_s=120.0,
                          stream_timeout_s=3600.0,   # replay: one ScoreGroups stream per step of a chunk
                          # The outage window bounds the wait (--outage-timeout-s 1 gives up after
                          # about a second, not after ten back-offs of up to 5 s each); a team's
                          # quota refusals are still waited out up to ten times.
                          max_retries=1, max_quota_retries=10, outage_timeout_s=args.outage_timeout_s,
                          log=lambda line: print(f"rewardctl: {line}", file=sys.stderr))
    try:
        client.wait_ready(CONNECT_TIMEOUT_S)
    except RewardServiceUnavailable as e:
        client.close()
        raise Failure(f"no reward server answers at {args.server} (start one with `reward-server`): {e}", 4) from None
    return client


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


def _json_arg(text: str | None, flag: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{flag}: not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: must be a JSON object")
    return value


# --- commands ---------------------------------------------------------------------------

def cmd_score(args: argparse.Namespace) -> int:
    if args.run and not args.server:
        raise UsageError("--run: scores are stored in a run on a server; give --server HOST:PORT "
                         "(or $REWARD_SERVER_ADDRESS)")
    if args.batch_size < 1:
        raise UsageError("--batch-size: at least 1")
    client = connect(args) if args.server else None
    try:
        return run_score(args, client)
    except RewardServiceUnavailable as e:
        hint = (f"; rerun with --resume to go on where it stopped ({args.output} holds the lines done)"
                if args.output else "; with -o OUT, --resume goes on where it stopped")
        raise Failure(f"{e}{hint}", 4) from None
    finally:
        if client is not None:
            client.close()


def cmd_verifiers(args: argparse.Namespace) -> int:
    from rich.table import Table

    def version(v: str, latest: bool) -> str:
        return v + (" (latest)" if latest and args.all_versions else "")

    if args.server:
        with connect(args) as client:
            infos = client.list_verifiers(args.all_versions)
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


def cmd_runs_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    with connect(args) as client:
        runs = client.list_runs(limit=args.limit, team=args.team or "")
    table = Table("run_id", "name", "state", "created", "last step", "scores")
    for r in runs:
        table.add_row(r.run_id, r.name, r.state, r.created_at[:19], str(r.last_step), str(r.score_count))
    print_table(table)
    return 0


def cmd_runs_start(args: argparse.Namespace) -> int:
    config = _json_arg(args.config, "--config")
    with connect(args) as client:
        print(client.start_run(args.name, config=config, run_id=args.run_id or ""))
    return 0


def cmd_runs_finish(args: argparse.Namespace) -> int:
    summary = _json_arg(args.summary, "--summary")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in summary.values()):
        raise UsageError("--summary: a JSON object of numbers, e.g. '{\"reward_mean\": 0.8}'")
    with connect(args) as client:
        run = client.finish_run(args.run, args.state, summary)
    print(f"{run.run_id} {run.state} (last step {run.last_step}, {run.score_count} scores)")
    return 0


def cmd_specs_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    with connect(args) as client:
        specs = client.list_specs()
    table = Table("name", "version", "created", "components", "routes", "description")
    for s in specs:
        table.add_row(s.name, str(s.version), s.created_at[:19], ", ".join(c.name for c in s.spec.components),
                      ", ".join(sorted(s.spec.routes)), s.description)
    print_table(table)
    return 0


def cmd_specs_show(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            stored = client.get_spec(args.ref)
        except ValueError as e:
            raise UsageError(str(e)) from None
    print(json.dumps(message_to_dict(stored), indent=2))
    return 0


def cmd_specs_put(args: argparse.Namespace) -> int:
    where = "stdin" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    except OSError as e:
        raise UsageError(f"{where}: {e.strerror}") from None
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{where}: not valid JSON: {e}") from None
    with connect(args) as client:
        try:
            stored = client.put_spec(args.name, spec, args.description or "")
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
    print(f"{stored.name}@{stored.version}")
    return 0


HISTORY_FIELDS = ["score_id", "run_id", "step", "group_id", "sample_index", "verifier", "verifier_version",
                  "status", "reward", "total_reward", "reason", "latency_ms", "cached", "completion_sha256",
                  "created_at", "team"]


def history_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The QueryScores filters of `history`. Raises UsageError for a bad time."""
    from .audit.records import parse_time

    try:
        return dict(step_min=args.step_min, step_max=args.step_max, verifier=args.verifier or "",
                    status=args.status, limit=args.limit, team=args.team or "",
                    created_after=parse_time(args.since, "--since") if args.since else "",
                    created_before=parse_time(args.until, "--until") if args.until else "",
                    reward_min=args.reward_min, reward_max=args.reward_max, timeout_s=0)
    except ValueError as e:
        raise UsageError(str(e)) from None


TEAM_OF_RUN = ("admins: the team whose run (run ids are per team; default: your team's, else the one "
               "team's holding the id)")


def cmd_history(args: argparse.Namespace) -> int:
    filters = history_filters(args)
    client = connect(args)
    if args.run:  # an unknown run is NOT_FOUND as in show and report, not an empty table
        try:
            client.get_run(args.run, team=args.team or "")
        except RewardCallError as e:  # --team '*': several teams holding the id is no error here
            if args.team != "*" or e.code is None or e.code.name != "INVALID_ARGUMENT":
                raise
    found = 0

    def counted(stream: Iterator[Any]) -> Iterator[Any]:
        nonlocal found
        for r in stream:
            found += 1
            yield r

    def check_verifier() -> None:
        # Only when nothing matched: a verifier no longer registered may still be in the history.
        if found or not args.verifier:
            return
        names = {v.name for v in client.list_verifiers(all_versions=True)}
        if args.verifier not in names:
            raise Failure(f"NOT_FOUND: no verifier named {args.verifier!r} (known: {', '.join(sorted(names))})", 3)

    records = counted(client.iter_scores(args.run or "", **filters))

    def as_dict(r: Any) -> dict[str, Any]:
        d = {k: getattr(r, k) for k in HISTORY_FIELDS}
        d["status"] = status_name(r.status)
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


def cmd_show(args: argparse.Namespace) -> int:
    from .audit import show

    with connect(args) as client:
        rec = client.get_score(args.score_id)
        p = show.provenance(rec, show.fetch_siblings(client, rec))
    print(json.dumps(p, indent=2) if args.format == "json" else show.render_text(p))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .audit import report

    correctness = tuple(x.strip() for x in args.correctness.split(",") if x.strip())
    with connect(args) as client:
        data = report.fetch_run(client, args.run, team=args.team or "", texts=False if args.no_texts else None)
    rep = report.build_report(data, correctness=correctness, source=args.server)
    out = args.output or f"report-{args.run}.html"
    with open(out, "w", encoding="utf-8") as f:
        f.write(report.render_html(rep))
    raised = [x for x in rep.findings if x.state == "raised"]
    print(f"wrote {out}: {len(data.samples)} samples over {len(rep.series.steps)} steps, {len(rep.plots)} plots, "
          f"{len(raised)} flag(s) raised" + "".join(f"\n  FLAG {x.title}: {x.detail}" for x in raised))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .audit import replay

    try:
        spec = replay.VerifierSpec.parse(args.verifier, args.params)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with connect(args) as client, tqdm(unit="sample", disable=None, file=sys.stderr, desc="replay") as bar:
        try:
            result = replay.replay(client, args.run, spec, team=args.team or "", name=args.name or "", threshold=args.pass_threshold,
                                   max_examples=args.examples, chunk_samples=args.chunk, progress=bar.update)
        except replay.ReplayError as e:
            raise Failure(str(e), 7) from None
    print(json.dumps(result.as_dict(), indent=2) if args.format == "json" else result.render_text())
    return 0 if result.replay_run is not None else 1


# --- parsing ----------------------------------------------------------------------------

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


def _connection_options(top: bool = False) -> argparse.ArgumentParser:
    """--server, --api-key, --tls-ca and --outage-timeout-s: accepted before or after the
    subcommand (after wins). On the subcommands their default is SUPPRESS, so a value given
    before the subcommand is kept."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection (before or after the subcommand)")
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    g.add_argument("--server", default=d(None),
                   help=f"HOST:PORT of the reward service (default $REWARD_SERVER_ADDRESS, else {DEFAULT_SERVER}; "
                        "score and verifiers run in-process when neither is given)")
    g.add_argument("--api-key", default=d(None), help="the team's key (default $REWARD_API_KEY)")
    g.add_argument("--tls-ca", default=d(None), help="PEM CA certificate: connect with TLS (default $REWARD_TLS_CA)")
    g.add_argument("--outage-timeout-s", type=float, default=d(300.0),
                   help="how long a call waits out an unreachable server before giving up (exit 4); default 300")
    return p


def build_parser() -> _Parser:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = _Parser(prog="rewardctl", description=__doc__.split("\n\n")[0],
                 epilog=EXAMPLES_TEXT + "\n\n" + LINE_FORMAT + "\n\n" + EXIT_CODES,
                 formatter_class=fmt, parents=[_connection_options(top=True)])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_connection_options()]

    def add(parent: Any, name: str, help: str, fn: Any, *, epilog: str = EXIT_CODES, key: str = "",
            **kw: Any) -> argparse.ArgumentParser:
        example = f"example:\n  {EXAMPLES[key or name]}\n\n"
        p = parent.add_parser(name, parents=common, help=help, description=help, epilog=example + epilog,
                              formatter_class=fmt, **kw)
        p.set_defaults(fn=fn)
        return p

    p = add(sub, "score", "score a JSONL file of samples (in-process, or through --server, into a run with --run)",
            cmd_score, epilog=LINE_FORMAT + "\n\n" + EXIT_CODES)
    p.add_argument("file")
    p.add_argument("-o", "--output", help="output JSONL (default stdout)")
    p.add_argument("--run", help="store the scores in this run (see `runs start`); needs --server")
    p.add_argument("--step", type=int, default=0, help="the run's step the scores belong to (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="go on with an interrupted -o OUT: skip the lines already in OUT and, with --run, the "
                        "samples (by id) already stored at that run's --step; ids must be unique in the file")
    p.add_argument("--batch-size", type=int, default=BATCH, help=f"samples per Score request (default {BATCH})")
    p.add_argument("--progress", action="store_true",
                   help="a progress bar on stderr even when it is not a terminal (on a terminal: always)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="in-process: worker processes for isolated verifiers and threads for sandboxed code "
                        "(default: the CPU count)")

    p = add(sub, "verifiers", "list verifiers, versions and parameters", cmd_verifiers)
    p.add_argument("--all-versions", action="store_true",
                   help="also the older versions kept for pinned specs and `replay` (default: the newest)")

    p = add(sub, "runs", "runs: list (the default), start, finish", cmd_runs_list)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--team", help="admins: another team's runs, or * for every team")
    runs = p.add_subparsers(dest="runs_command", metavar="{list,start,finish}")
    p = add(runs, "list", "list runs, newest first", cmd_runs_list, key="runs list")
    p.add_argument("--limit", type=int, default=argparse.SUPPRESS, help="at most this many (default 100)")
    p.add_argument("--team", default=argparse.SUPPRESS, help="admins: another team's runs, or * for every team")
    p = add(runs, "start", "start a run (or resume one by --run-id); prints its id", cmd_runs_start,
            key="runs start")
    p.add_argument("name")
    p.add_argument("--config", help="the run's configuration, a JSON object (stored verbatim)")
    p.add_argument("--run-id", help="the run's id (default: generated); an existing id of your team resumes it")
    p = add(runs, "finish", "mark a run finished or failed", cmd_runs_finish, key="runs finish")
    p.add_argument("run")
    p.add_argument("--state", choices=["finished", "failed"], default="finished")
    p.add_argument("--summary", help="summary metrics, a JSON object of numbers")

    p = add(sub, "specs", "stored specs: list, show, put", lambda a: p_specs.error("a command: list, show or put"))
    p_specs = p
    specs = p.add_subparsers(dest="specs_command", metavar="{list,show,put}")
    add(specs, "list", "the newest version of each stored spec", cmd_specs_list, key="specs list")
    p = add(specs, "show", "one stored spec as JSON", cmd_specs_show, key="specs show")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p = add(specs, "put", "store a spec ({\"components\", \"routes\"?, \"task_key\"?} JSON); prints NAME@VERSION "
                          "(a new version when the body changed)", cmd_specs_put, key="specs put")
    p.add_argument("name")
    p.add_argument("file", metavar="FILE.json|-")
    p.add_argument("--description", help="what the spec is for")

    p = add(sub, "history", "stored scores, filtered (streamed from the server)", cmd_history)
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

    p = add(sub, "show", "one score's full provenance (texts, hashes, verifier, worker, run)", cmd_show)
    p.add_argument("score_id", type=int)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = add(sub, "report", "a self-contained HTML report of a run, with reward-hacking flags", cmd_report)
    p.add_argument("run")
    p.add_argument("--team", help=TEAM_OF_RUN)
    p.add_argument("-o", "--output", help="HTML file (default report-RUN.html)")
    p.add_argument("--correctness", default="math,code",
                   help="verifiers that measure correctness, comma-separated (default math,code)")
    p.add_argument("--no-texts", action="store_true",
                   help="never fetch completion texts (no length from texts when the trainer logged none)")

    p = add(sub, "replay", "re-score a run's stored completions into a linked replay run", cmd_replay)
    p.add_argument("run")
    p.add_argument("--team", help=TEAM_OF_RUN)
    p.add_argument("--verifier", required=True, help="NAME or NAME@VERSION (default: the newest version)")
    p.add_argument("--params", help="the verifier's parameters, a JSON object")
    p.add_argument("--name", help="the replay run's name")
    p.add_argument("--pass-threshold", type=float, default=0.5,
                   help="a sample passes when OK with reward >= this; a flip is a pass/fail change (default 0.5)")
    p.add_argument("--examples", type=int, default=5, help="examples shown per kind of change (default 5)")
    p.add_argument("--chunk", type=int, default=256, help="samples per scoring round (default 256)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    return ap


LOCAL_COMMANDS = {"score", "verifiers"}     # in-process without a server


def main(argv: list[str] | None = None) -> NoReturn:
    argv = sys.argv[1:] if argv is None else argv
    _Parser.secrets = secrets_in(argv) + [v for v in (os.environ.get("REWARD_API_KEY"),) if v]
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.server is None:
        args.server = os.environ.get("REWARD_SERVER_ADDRESS") or (None if args.command in LOCAL_COMMANDS
                                                                  else DEFAULT_SERVER)
    try:
        code = args.fn(args)
        sys.stdout.flush()      # a reader gone away shows here, not at interpreter exit
    except BrokenPipeError:
        _reader_gone()
    except UsageError as e:
        _fail(f"rewardctl: {e}", 2)
    except Failure as e:
        _fail(f"rewardctl: {e}", e.code)
    except RewardServiceUnavailable as e:
        _fail(f"rewardctl: UNAVAILABLE: {e}", 4)
    except RewardCallError as e:
        name = e.code.name if e.code is not None else ""
        _fail(f"rewardctl: {e}", EXIT_BY_CODE.get(name, 7))
    except RewardServiceError as e:
        _fail(f"rewardctl: {e}", 7)
    except KeyboardInterrupt:
        _fail("rewardctl: interrupted", 130)
    sys.exit(code)


def _fail(message: str, code: int) -> NoReturn:
    for secret in _Parser.secrets:
        message = message.replace(secret, "***")
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    print(message, file=sys.stderr)
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
