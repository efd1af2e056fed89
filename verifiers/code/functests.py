"""Function tests (HumanEval / MBPP layout), compared where the candidate cannot reach.

The naive harness runs `prompt + completion + test + check(entry_point)` in one process,
so the candidate can exit 0 before the asserts, return an object equal to everything,
read the expected values from the caller's frame or the test file, or patch the
checker. Here the candidate's code runs alone, in a sandbox that holds no test, and
only its *return values* come back, as plain data (plainwire: custom objects are
refused). The comparison happens on the trusted side of the boundary:

1. Fast path: when every assert in `check` has the shape
   `assert candidate(<literals>) <==|!=|is|is not> <literal>` (or `assert candidate(…)`,
   `assert not candidate(…)`), the server evaluates the literals with `ast.literal_eval`
   (never executing the reference) and compares the decoded return values itself.
   One sandbox run per completion.
2. Replay, for every other shape (helpers, loops, random inputs, tolerances): the
   reference's test code runs in a *separate* sandbox (the test process) in which
   `candidate` is a proxy answering from recorded return values; calls it has no answer
   for are recorded and the candidate process computes them; repeat until every test is
   decided (usually: record, compute, decide = three runs). The expected values live only
   in the test process; the candidate never shares a process, a file system or a PID
   namespace with it. Each report line carries a fresh per-run nonce, so only the harness
   of that run can have produced it.
Tests that cannot be replayed (they pass a function or an object to the candidate, or
their calls never settle because the test code is not deterministic) end as ERROR, not
as a reward: the verifier does not guess.

A "test" is one top-level statement of `check` (or of the MBPP module) that calls the
candidate or holds a non-constant assert; `assert True` lines do not count.
"""
from __future__ import annotations

import ast
import json
import math
import re
import reprlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sandbox import Limits, SandboxBackend
from . import harness, plainwire
from .languages import PYTHON, PYTHON_ENV, PYTHON_EXE
from .reference import FunctionReference, calls_name, find_check
from .stdio import WALL_FACTOR, Budget, cpu_limit_detail, failure_verdict, last_line, wall_limit_detail
from .verdict import TestOutcome, Verdict

MAX_ROUNDS = 6
MAX_RESTARTS = 3
LOAD_ALLOWANCE_S = 2.0      # interpreter start + the candidate module's top level
TEST_PROCESS_MIN_S = 10.0
_SHOW = 80


class HarnessError(Exception):
    """The reference's tests cannot be evaluated safely (→ ERROR result, not a reward)."""


# -- program assembly --------------------------------------------------------------------

def _parses(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def defines(tree: ast.Module | None, name: str) -> bool:
    if tree is None:
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def assemble_program(code: str, ref: FunctionReference) -> str:
    """The candidate's module: the prompt, then the completion (HumanEval prepends the
    prompt; a completion that defines the entry point itself still gets the prompt's
    imports and helpers, its own definition coming last and winning)."""
    if not ref.prompt.strip():
        return code
    if defines(_parses(code), ref.entry_point):
        options = [ref.prompt.rstrip() + "\n\n\n" + code, code]
    else:
        options = [ref.prompt + code, ref.prompt.rstrip("\n") + "\n" + code, code]
    return next((o for o in options if _parses(o) is not None), options[0])


# -- the fast path: split asserts -------------------------------------------------------

@dataclass(frozen=True)
class SplitAssert:
    line: int
    args: tuple
    kwargs: dict
    op: str          # "==", "!=", "is", "is not", "truthy", "falsy"
    expected: Any


_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not"}
_SWAP = {"==": "==", "!=": "!=", "is": "is", "is not": "is not"}


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _literal_call(node: ast.AST, names: set[str]) -> tuple[tuple, dict] | None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
        return None
    args = []
    for a in node.args:
        ok, v = _literal(a) if not isinstance(a, ast.Starred) else (False, None)
        if not ok:
            return None
        args.append(v)
    kwargs = {}
    for k in node.keywords:
        ok, v = _literal(k.value)
        if k.arg is None or not ok:
            return None
        kwargs[k.arg] = v
    return tuple(args), kwargs


def _split(test: ast.expr, names: set[str], line: int) -> SplitAssert | None:
    call = _literal_call(test, names)
    if call is not None:
        return SplitAssert(line, *call, "truthy", None)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        call = _literal_call(test.operand, names)
        return SplitAssert(line, *call, "falsy", None) if call is not None else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _OPS:
        op = _OPS[type(test.ops[0])]
        for call_node, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
            call = _literal_call(call_node, names)
            ok, expected = _literal(other)
            if call is not None and ok:
                if op in ("is", "is not") and expected not in (None, True, False):
                    return None
                if op in ("is", "is not") and type(expected) is int:  # 1 is not True
                    return None
                return SplitAssert(line, *call, op, expected)
    return None


def fast_plan(ref: FunctionReference) -> list[SplitAssert] | None:
    """The split asserts when every test has a fast-path shape; else None (replay)."""
    tree = ref.tree if ref.tree is not None else _parses(ref.test)
    if tree is None:
        return None
    check = find_check(tree)
    names = {ref.entry_point}
    if check is not None:
        names.add(check.args.args[0].arg)
        body = check.body
        if any(calls_name(s, names | {"check"}) for s in tree.body if s is not check):
            return None
    else:
        body = tree.body
    plan = []
    for stmt in body:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            continue
        if check is None and isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if not isinstance(stmt, ast.Assert):
            return None
        if isinstance(stmt.test, ast.Constant):
            if stmt.test.value:
                continue  # `assert True, "..."`: not a test
            return None
        split = _split(stmt.test, names, stmt.lineno)
        if split is None:
            return None
        plan.append(split)
    return plan or None


class _SafeRepr(reprlib.Repr):
    """repr() that never raises on decoded plain data: an int over str()'s 4300-digit
    limit is shown by its size (the candidate chose the value, not the verdict)."""

    def repr_int(self, x: int, level: int) -> str:
        try:
            return repr(x)
        except ValueError:
            return f"<an int of {int_digits(x)} digits>"


_SAFE_REPR = _SafeRepr()
_SAFE_REPR.maxlevel = 4
_SAFE_REPR.maxlist = _SAFE_REPR.maxtuple = _SAFE_REPR.maxset = _SAFE_REPR.maxfrozenset = _SAFE_REPR.maxdict = 8
_SAFE_REPR.maxstring = _SAFE_REPR.maxother = _SHOW


def int_digits(x: int) -> str:
    """The number of decimal digits of `x` (without str(), which refuses over 4300 digits);
    exact below 2**100000 (cheap there), "about N" above."""
    bits = abs(x).bit_length()
    d = max(1, int(bits * math.log10(2)))          # 10**(d-1) <= |x| < 10**(d+1)
    if bits > 100_000:
        return f"about {d}"
    return str(d + 1 if abs(x) >= 10 ** d else d)


def _short(v: Any) -> str:
    """A bounded repr of a decoded value; never raises."""
    try:
        r = repr(v)
    except ValueError:  # an int over the digit limit somewhere inside
        r = _SAFE_REPR.repr(v)
    return r if len(r) <= _SHOW else r[:_SHOW] + "…"


def judge(split: SplitAssert, answer: dict) -> tuple[Verdict, str]:
    """Compare one recorded answer with the assert, on the trusted side."""
    if not answer.get("ok"):
        return _failure_of(answer)
    value = plainwire.decode(answer["value"])
    op, exp = split.op, split.expected
    ok = {"==": lambda: value == exp, "!=": lambda: value != exp, "is": lambda: value is exp,
          "is not": lambda: value is not exp, "truthy": lambda: bool(value), "falsy": lambda: not value}[op]()
    if ok:
        return Verdict.ACCEPTED, ""
    if op in ("truthy", "falsy"):
        return Verdict.WRONG_ANSWER, f"assert on line {split.line}: got {_short(value)}"
    return Verdict.WRONG_ANSWER, f"assert on line {split.line}: expected {op} {_short(exp)}, got {_short(value)}"


def _failure_of(answer: dict) -> tuple[Verdict, str]:
    if answer.get("kind") == "exception":
        return Verdict.RUNTIME_ERROR, f"the candidate raised {answer.get('type') or 'an exception'}: " \
                                      f"{answer.get('error', '')}"[:300]
    try:
        return Verdict(answer.get("verdict")), answer.get("detail", "")
    except ValueError:
        return Verdict.RUNTIME_ERROR, answer.get("detail", "")


# -- the candidate process ---------------------------------------------------------------

# What str.splitlines() ends a line at (a report line is JSON with ASCII escapes: it holds none).
_LINE_ENDS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _events(stdout: bytes, nonce: str) -> list[dict]:
    """The report lines of this run (those carrying its nonce), parsed. Anything
    malformed is dropped: a forged line that is too deep for the JSON parser must not
    turn into a verifier crash (an ERROR the trainer would not penalise). The lines are
    found by a search for the nonce, not by splitting the whole output: a run may print
    millions of empty lines, and a list of them is ~50 bytes each."""
    text = stdout.decode("utf-8", "replace")
    found = re.finditer(f"(?:^|(?<=[{_LINE_ENDS}])){re.escape(nonce)} ([^{_LINE_ENDS}]*)", text)
    out = []
    for m in found:
        try:
            ev = json.loads(m.group(1))
        except (ValueError, RecursionError):
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out


def _fail(verdict: Verdict, detail: str) -> dict:
    return {"ok": False, "kind": "failure", "verdict": verdict.value, "detail": detail}


def _answer(ev: dict, timeout_s: float) -> dict:
    cpu = ev.get("cpu") if isinstance(ev.get("cpu"), (int, float)) else 0.0
    if cpu > timeout_s or (ev.get("kind") == "timeout" and cpu >= timeout_s * 0.9):
        return _fail(Verdict.TIME_LIMIT, cpu_limit_detail(timeout_s, cpu, "the call"))
    if ev.get("kind") == "timeout":
        return _fail(Verdict.TIME_LIMIT, wall_limit_detail(WALL_FACTOR * timeout_s, cpu, "the call"))
    if ev.get("ok") is True:
        try:
            plainwire.decode(ev.get("value"))
            out = {"ok": True, "value": ev.get("value")}
            if "after" in ev:
                plainwire.decode(ev["after"])
                out["after"] = ev["after"]
            return out
        except (ValueError, RecursionError):
            return _fail(Verdict.RUNTIME_ERROR, "the harness's report of this call is malformed")
    if ev.get("kind") == "unplain":
        return _fail(Verdict.WRONG_ANSWER, f"returned {ev.get('error', 'a value that is not plain data')}; "
                                           f"only plain data (None, bool, int, float, str, bytes, list, tuple, "
                                           f"dict, set) is compared")
    if ev.get("type") == "MemoryError":
        return _fail(Verdict.MEMORY_LIMIT, "MemoryError")
    return {"ok": False, "kind": "exception", "type": str(ev.get("type", "")), "error": str(ev.get("error", ""))}


def run_calls(backend: SandboxBackend, program: str, entry_point: str, calls: list[list], *, timeout_s: float,
              memory_bytes: int, output_bytes: int, budget: Budget,
              stop: Callable[[int, dict], bool] | None = None) -> list[dict]:
    """The candidate's answer to each call ([args, kwargs], plainwire-encoded).

    All calls run in one process, each under a per-call alarm; a run that dies inside a
    call (hard wall clock, memory, os._exit) is restarted after it, unless
    `stop(index, answer)` says the outcome is already decided (then the candidate
    process also stops at its first exception or timeout). Calls never run are NOT_RUN."""
    n = len(calls)
    answers: list[dict | None] = [None] * n
    start, restarts = 0, 0
    while start < n:
        remaining = budget.remaining()
        if remaining < 0.5:
            for k in range(start, n):
                answers[k] = _fail(Verdict.TIME_LIMIT, budget.exhausted_detail())
            break
        chunk = calls[start:]
        wall = min(remaining, LOAD_ALLOWANCE_S + WALL_FACTOR * timeout_s * len(chunk))
        limits = Limits(wall_time_s=wall, cpu_time_s=wall, memory_bytes=memory_bytes, output_bytes=output_bytes,
                        processes=16)
        nonce = secrets.token_hex(16)
        req = json.dumps({"nonce": nonce, "code": program, "entry_point": entry_point, "calls": chunk,
                          "alarm_s": WALL_FACTOR * timeout_s, "cpu_alarm_s": timeout_s,
                          "stop_on_failure": stop is not None})
        r = budget.ran(backend.run_python(harness.files("candidate_runner.py"), "candidate_runner.py",
                                          req.encode(), limits, env=PYTHON_ENV, interpreter=PYTHON_EXE))
        events = _events(r.stdout, nonce)
        load = next((e for e in events if e.get("ev") == "load"), None)
        if load is None or not load.get("ok"):
            if load is None:
                failed = failure_verdict(r, PYTHON, wall, wall)
                verdict, detail = failed or (Verdict.RUNTIME_ERROR, f"the program ended ({r.describe()}) before "
                                                                    f"the tests ran")
                if verdict is Verdict.TIME_LIMIT:
                    detail = "loading the program: " + detail
            elif load.get("kind") == "compile":
                verdict, detail = Verdict.COMPILE_ERROR, str(load.get("error", ""))
            else:
                verdict, detail = Verdict.RUNTIME_ERROR, f"loading the program: {load.get('error', '')}"
            for j in range(start, n):
                answers[j] = _fail(verdict, detail)
            break
        ends: dict[int, dict] = {}
        for e in events:
            if e.get("ev") == "end" and isinstance(e.get("i"), int):
                ends.setdefault(e["i"], e)
        j = 0
        while j < len(chunk) and j in ends:
            answers[start + j] = _answer(ends[j], timeout_s)
            j += 1
        if j == len(chunk) or (stop is not None and j > 0 and stop(start + j - 1, answers[start + j - 1])):
            break
        # The run ended inside call j.
        failed = failure_verdict(r, PYTHON, float("inf"))
        if failed is None or failed[0] is Verdict.TIME_LIMIT:
            failed = ((Verdict.TIME_LIMIT, f"the call ran past the run's limits: "
                                           + (wall_limit_detail(wall, r.cpu_time_s) if r.timed_out else
                                              cpu_limit_detail(wall, r.cpu_time_s)))
                      if r.timed_out or r.cpu_limit_hit else
                      (Verdict.RUNTIME_ERROR, f"the program ended ({r.describe()}) inside the call"
                                              + (f": {last_line(r.stderr)}" if r.stderr else "")))
        answers[start + j] = _fail(*failed)
        decided = stop is not None and any(stop(k, a) for k, a in enumerate(answers[:start + j + 1]) if a)
        start += j + 1
        restarts += 1
        if decided:
            break
        if restarts > MAX_RESTARTS and start < n:
            for k in range(start, n):
                answers[k] = _fail(Verdict.NOT_RUN, "not run: the candidate's process died too often")
            break
    return [a if a is not None else _fail(Verdict.NOT_RUN, "") for a in answers]


# -- the replay through the test process ---------------------------------------------------

def _replay(backend: SandboxBackend, program: str, ref: FunctionReference, *, timeout_s: float, memory_bytes: int,
            output_bytes: int, stop_at_first_failure: bool, budget: Budget) -> tuple[list[TestOutcome], dict]:
    answers: dict[str, dict] = {}
    last: list[TestOutcome] = []
    for round_no in range(1, MAX_ROUNDS + 1):
        info = {"path": "replay", "rounds": round_no, "calls": len(answers)}
        remaining = budget.remaining()
        if remaining < 0.5:  # the candidate's calls used it up: undecided tests fail on time
            return [o if o.verdict is not Verdict.NOT_RUN else
                    TestOutcome(o.index, Verdict.TIME_LIMIT, budget.exhausted_detail(), where=o.where)
                    for o in last] or [TestOutcome(0, Verdict.TIME_LIMIT, budget.exhausted_detail())], info
        # The reference's own checking: CPU-time limited, with the same generous wall backstop.
        cpu = max(TEST_PROCESS_MIN_S, 4 * timeout_s)
        wall = min(remaining, WALL_FACTOR * cpu)
        nonce = secrets.token_hex(16)
        req = json.dumps({"nonce": nonce, "test": ref.test, "entry_point": ref.entry_point, "prompt": ref.prompt,
                          "setup": ref.setup, "answers": answers, "stop_at_first_failure": stop_at_first_failure})
        limits = Limits(wall_time_s=wall, cpu_time_s=min(cpu, wall), memory_bytes=max(memory_bytes, 512 << 20),
                        output_bytes=max(output_bytes, 16 << 20), processes=16)
        r = budget.ran(backend.run_python(harness.files("test_runner.py"), "test_runner.py",
                                          req.encode(), limits, env=PYTHON_ENV, interpreter=PYTHON_EXE))
        events = _events(r.stdout, nonce)
        err = next((e for e in events if e.get("ev") == "error"), None)
        if err is not None:
            raise HarnessError(f"the reference's test code cannot be evaluated: {str(err.get('error'))[:300]}")
        reported: dict[int, dict] = {}
        for e in events:
            if e.get("ev") == "test" and isinstance(e.get("i"), int):
                reported.setdefault(e["i"], e)
        done = next((e for e in events if e.get("ev") == "done"), None)
        if done is None:
            # The test process died. Checking a test ran past the limits: that test fails
            # (its answers came from the candidate, e.g. a huge value); anything else is
            # the reference's fault.
            begun = [e["i"] for e in events if e.get("ev") == "begin" and isinstance(e.get("i"), int)]
            if not (r.timed_out or r.cpu_limit_hit or r.memory_limit_hit) or not begun:
                raise HarnessError(f"the test process failed ({r.describe()}): {last_line(r.stderr)}")
            verdict = Verdict.MEMORY_LIMIT if r.memory_limit_hit else Verdict.TIME_LIMIT
            total = max([*reported, *begun]) + 1
            outcomes = [_outcome(i, reported.get(i)) for i in range(total)]
            outcomes[begun[-1]] = TestOutcome(begun[-1], verdict, f"checking it ran past the limit ({r.describe()})")
            return outcomes, info
        total = int(done.get("tests", 0))
        if total == 0:
            raise HarnessError("the reference's test code holds no test that calls the candidate")
        abort = next((e for e in events if e.get("ev") == "abort"), None)
        last = [_outcome(i, reported.get(i)) for i in range(total)]
        pending = done.get("aborted") == "pending" or any(e.get("status") == "pending" for e in reported.values())
        if not pending:
            if abort is not None:  # the candidate broke a statement between tests: the rest fail
                first = next((i for i in range(total) if i not in reported), None)
                if first is not None:
                    last[first] = TestOutcome(first, _verdict(abort.get("verdict")),
                                              str(abort.get("detail", ""))[:300], where=f"after test {first}")
            return last, info
        calls_ev = next((e for e in events if e.get("ev") == "calls"), None)
        new = {k: v for k, v in ((calls_ev or {}).get("new") or {}).items() if k not in answers and _well_formed(v)}
        if not new:
            raise HarnessError("the test code's calls do not settle (is it non-deterministic?)")
        if round_no == MAX_ROUNDS:
            break
        _answer_calls(backend, program, ref.entry_point, new, answers, timeout_s=timeout_s,
                      memory_bytes=memory_bytes, output_bytes=output_bytes, budget=budget)
    raise HarnessError(f"the tests still need new candidate calls after {MAX_ROUNDS} rounds "
                       f"(each call's arguments depend on the previous result)")


def _well_formed(call: Any) -> bool:
    """A call the test process recorded: [args, kwargs], [args, kwargs, name] or
    [args, kwargs, name|None, refs] (see test_runner.py)."""
    if not isinstance(call, list) or len(call) not in (2, 3, 4):
        return False
    if len(call) >= 3 and not (isinstance(call[2], str) and call[2].isidentifier()
                               or (len(call) == 4 and call[2] is None)):
        return False
    return len(call) < 4 or isinstance(call[3], list)


def _answer_calls(backend: SandboxBackend, program: str, entry_point: str, new: dict[str, list],
                  answers: dict[str, dict], **limits: Any) -> None:
    """Have the candidate process answer the test process's new calls, into `answers`.
    A call that takes another call's (not yet known) answer as an argument is computed
    once that answer is: in waves within this round, so that `candidate(helper(x))`
    costs one more candidate run, not one more round per link."""
    pending = dict(new)
    resolved: dict[str, str] = {}  # the key a call with references was recorded under -> its concrete key
    for _ in range(MAX_ROUNDS):
        batch: dict[str, list] = {}
        waiting: dict[str, list] = {}
        progress = False
        for key, call in pending.items():
            if len(call) < 4:
                batch[key] = call
                continue
            concrete = _concrete(call, answers, resolved)
            if concrete is None:
                waiting[key] = call
            elif concrete:  # (False: a call it refers to failed; the test meets that failure first)
                resolved[key] = concrete[0]
                progress = True
                if concrete[0] not in answers:
                    batch[concrete[0]] = concrete[1]
        if batch:
            keys = list(batch)
            answers.update(zip(keys, run_calls(backend, program, entry_point, [batch[k] for k in keys], **limits)))
        if not waiting or not (batch or progress):
            return
        pending = waiting


def _set_at(obj: Any, steps: list, value: Any) -> Any:
    """`obj` with the item at `steps` (indices, keys) replaced by `value` (tuples rebuilt)."""
    if not steps:
        return value
    head, rest = steps[0], steps[1:]
    if type(obj) is tuple:
        items = list(obj)
        items[head] = _set_at(items[head], rest, value)
        return tuple(items)
    if type(obj) is list or (type(obj) is dict and head in obj):
        obj[head] = _set_at(obj[head], rest, value)
        return obj
    raise ValueError("no such item")


def _concrete(call: list, answers: dict[str, dict], resolved: dict[str, str]) -> tuple[str, list] | bool | None:
    """(concrete key, concrete call) of a call with references once every call it refers
    to is answered; None while one is not; False when one failed (or the record is bad)."""
    args_enc, kwargs_enc, name, refs = call
    try:
        args, kwargs = plainwire.decode(args_enc), plainwire.decode(kwargs_enc)
        if type(args) is not list or type(kwargs) is not dict:
            return False
        for path, key in refs:
            ans = answers.get(resolved.get(key, key)) if isinstance(key, str) else None
            if ans is None:
                return None if isinstance(key, str) else False
            if not ans.get("ok"):
                return False
            value = plainwire.decode(ans["value"])
            if path[:1] == ["a"]:
                args = _set_at(args, list(path[1:]), value)
            elif path[:1] == ["k"] and len(path) >= 2:
                kwargs = _set_at(kwargs, list(path[1:]), value)
            else:
                return False
        concrete = [plainwire.encode(args), plainwire.encode(kwargs)] + ([] if name is None else [name])
    except (ValueError, TypeError, IndexError, KeyError, RecursionError):
        return False
    return plainwire.dumps(concrete), concrete


def _verdict(value: Any) -> Verdict:
    try:
        v = Verdict(value)
    except ValueError:
        return Verdict.WRONG_ANSWER
    return Verdict.RUNTIME_ERROR if v in (Verdict.NOT_RUN, Verdict.ACCEPTED) else v


def _outcome(i: int, e: dict | None) -> TestOutcome:
    if e is None:
        return TestOutcome(i, Verdict.NOT_RUN)
    where = f"test {i + 1} (line {e.get('line')})"
    if e.get("status") == "pass":
        return TestOutcome(i, Verdict.ACCEPTED, where=where)
    if e.get("status") == "pending":
        return TestOutcome(i, Verdict.NOT_RUN, where=where)
    return TestOutcome(i, _verdict(e.get("verdict")), str(e.get("detail", ""))[:300], where=where)


# -- entry point ------------------------------------------------------------------------------

def run_function_tests(backend: SandboxBackend, code: str, ref: FunctionReference, *, timeout_s: float,
                       memory_bytes: int, output_bytes: int, stop_at_first_failure: bool,
                       budget: Budget) -> tuple[list[TestOutcome], dict]:
    """(one outcome per test, {"path": "fast"|"replay", …}). Raises HarnessError."""
    program = assemble_program(code, ref)
    plan = fast_plan(ref)
    if plan is None:
        return _replay(backend, program, ref, timeout_s=timeout_s, memory_bytes=memory_bytes,
                       output_bytes=output_bytes, stop_at_first_failure=stop_at_first_failure, budget=budget)
    calls = [[plainwire.encode(list(s.args)), plainwire.encode(s.kwargs)] for s in plan]
    stop = (lambda k, a: judge(plan[k], a)[0] is not Verdict.ACCEPTED) if stop_at_first_failure else None
    answers = run_calls(backend, program, ref.entry_point, calls, timeout_s=timeout_s, memory_bytes=memory_bytes,
                        output_bytes=output_bytes, budget=budget, stop=stop)
    outcomes = []
    for i, (split, ans) in enumerate(zip(plan, answers)):
        verdict, detail = judge(split, ans)
        outcomes.append(TestOutcome(i, verdict, detail, where=f"test {i + 1} (line {split.line})"))
    if stop_at_first_failure:
        first = next((o.index for o in outcomes if not o.passed), None)
        if first is not None:
            outcomes = outcomes[:first + 1] + [TestOutcome(j, Verdict.NOT_RUN) for j in range(first + 1, len(plan))]
    return outcomes, {"path": "fast", "calls": len(calls)}
