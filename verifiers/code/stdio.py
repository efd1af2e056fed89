"""Standard input/output tests: compile once, run the program once per test in a fresh
sandbox, compare its stdout outside (the expected output never enters the sandbox)."""
from __future__ import annotations

import ast
import time
from dataclasses import dataclass, replace

from ..sandbox import Limits, RunResult, SandboxBackend, SandboxFile
from .compare import compare
from .languages import PYTHON, PYTHON_EXE, Language
from .reference import StdioReference
from .verdict import TestOutcome, Verdict

# The time limit is on CPU time (RLIMIT_CPU, and the cgroup's accounting after the
# run): a busy host slows the wall clock, not the program's CPU use. The wall clock is
# only the backstop for programs that sleep or block: WALL_FACTOR times the limit, plus
# an allowance for sandbox and interpreter start-up. 5x: on a 2-core host running ten
# busy processes a program gets a fifth of a core, and a correct program must not fail
# for that (2x failed correct programs under load); a sleeper costs wall time, not CPU.
WALL_FACTOR = 5.0
STARTUP_ALLOWANCE_S = 0.5
_DETAIL_CHARS = 200


@dataclass
class Budget:
    """The verify call's overall wall-clock budget. When it runs out, the tests not yet
    run fail as "time limit": every second of it was spent running the candidate's
    program under per-test limits, so a slow program cannot turn a failure into a
    TIMEOUT (which trainers exclude instead of penalising). Time a run waited for the
    sandbox is the service's, not the program's: `ran(result)` gives it back."""

    deadline: float
    total_s: float = 0.0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def ran(self, r: RunResult) -> RunResult:
        """Credit the time `r` waited to be admitted to the sandbox; returns `r`."""
        self.deadline += r.queued_s
        return r

    def exhausted_detail(self) -> str:
        return f"not run: the call's overall time budget ({self.total_s:g} s) ran out"


def last_line(stderr: bytes) -> str:
    """The most telling line of a crash's stderr: the last one naming an error, else the last."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln or "Exception" in ln or "error" in ln]
    return (named or lines or [""])[-1][:_DETAIL_CHARS]


def cpu_limit_detail(limit_s: float, cpu_s: float, what: str = "it") -> str:
    return f"CPU-time limit {limit_s:g} s: {what} used {cpu_s:.2f} s of CPU"


def wall_limit_detail(wall_s: float, cpu_s: float, what: str = "it") -> str:
    """A run ended by the wall-clock backstop, not the CPU-time limit: it slept or blocked
    (or the host was loaded beyond the backstop's factor)."""
    return f"wall-clock limit {wall_s:g} s (the backstop for sleeping or blocking): {what} used {cpu_s:.2f} s of CPU"


def failure_verdict(r: RunResult, lang: Language, timeout_s: float,
                    wall_s: float | None = None) -> tuple[Verdict, str] | None:
    """How a run failed (limit, crash), or None when it exited 0 within limits.
    `timeout_s`: the CPU-time limit; `wall_s`: the run's wall-clock limit (for the reason).
    A time limit's reason names the limit that ended the run."""
    if r.output_limit_hit:
        return Verdict.OUTPUT_LIMIT, "output over the size limit; the run was stopped"
    if r.cpu_limit_hit or r.cpu_time_s > timeout_s:
        return Verdict.TIME_LIMIT, cpu_limit_detail(timeout_s, r.cpu_time_s)
    if r.timed_out:
        return Verdict.TIME_LIMIT, wall_limit_detail(wall_s if wall_s is not None else r.wall_time_s, r.cpu_time_s)
    if r.exit_code != 0 and (r.memory_limit_hit or any(m in r.stderr for m in lang.oom_markers)):
        return Verdict.MEMORY_LIMIT, "out of memory" + (f" ({last_line(r.stderr)})" if r.stderr else "")
    if r.exit_code != 0:
        tail = last_line(r.stderr)
        return Verdict.RUNTIME_ERROR, r.describe() + (f": {tail}" if tail else "")
    return None


def python_syntax_error(code: str) -> str | None:
    """Python's "compile error": the parser's complaint, checked here (parsing runs no
    code) so that a syntax error is a compile error, not a runtime error."""
    try:
        ast.parse(code)
    except SyntaxError as e:
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    except (ValueError, RecursionError, MemoryError) as e:
        return f"{type(e).__name__}: the program cannot be parsed"
    return None


def compile_program(backend: SandboxBackend, lang: Language, code: str, limits: Limits,
                    budget: Budget | None = None) -> tuple[dict[str, bytes | SandboxFile], str | None]:
    """(files to run, None) or ({}, compile error text)."""
    files: dict[str, bytes | SandboxFile] = {lang.source: code.encode()}
    if lang.compile is None:
        return files, None
    r = backend.run(files, lang.compile, b"", limits, collect=[lang.artefact] if lang.artefact else [])
    if budget is not None:
        budget.ran(r)
    if not r.ok or (lang.artefact and lang.artefact not in r.files):
        if r.timed_out or r.cpu_limit_hit:
            return {}, f"compiler ran past {limits.wall_time_s:g} s"
        text = r.stderr.decode("utf-8", "replace")
        err = next((ln.strip() for ln in text.splitlines() if "error" in ln), last_line(r.stderr))
        return {}, (err or r.describe())[:_DETAIL_CHARS * 2]
    assert lang.artefact is not None
    return {lang.artefact: SandboxFile(r.files[lang.artefact], executable=True)}, None


def run_stdio_tests(backend: SandboxBackend, lang: Language, code: str, ref: StdioReference, *,
                    timeout_s: float, memory_bytes: int, output_bytes: int, compile_timeout_s: float,
                    comparator: str, float_tol: float, case_sensitive: bool, stop_at_first_failure: bool,
                    budget: Budget, exact_integers: bool = True) -> list[TestOutcome]:
    """One outcome per test (NOT_RUN after a stop)."""
    n = len(ref.tests)
    if lang.name == "python":
        error = python_syntax_error(code)
        if error is not None:
            return [TestOutcome(i, Verdict.COMPILE_ERROR, error) for i in range(n)]
    if lang.compile is not None:
        wall = min(compile_timeout_s, max(budget.remaining(), 0.1))
        climits = Limits(wall_time_s=wall, cpu_time_s=wall, memory_bytes=max(memory_bytes, 1 << 30),
                         processes=32, output_bytes=64 << 10, writable_workdir=True)
        files, error = compile_program(backend, lang, code, climits, budget)
        if error is not None:
            return [TestOutcome(i, Verdict.COMPILE_ERROR, error) for i in range(n)]
    else:
        files = {lang.source: code.encode()}
    limits = lang.run_limits(Limits(wall_time_s=WALL_FACTOR * timeout_s + STARTUP_ALLOWANCE_S, cpu_time_s=timeout_s,
                                    memory_bytes=memory_bytes, output_bytes=output_bytes, processes=16))
    argv = lang.run_argv(memory_bytes)
    env = dict(lang.env)
    outcomes: list[TestOutcome] = []
    for i, test in enumerate(ref.tests):
        if budget.remaining() < min(limits.wall_time_s, 1.0):
            outcomes.append(TestOutcome(i, Verdict.TIME_LIMIT, budget.exhausted_detail()))
            outcomes += [TestOutcome(j, Verdict.NOT_RUN) for j in range(i + 1, n)]
            break
        run_limits = replace(limits, wall_time_s=min(limits.wall_time_s, max(budget.remaining(), 0.1)))
        if lang is PYTHON:  # same command; the backend may fork it from a warm interpreter
            r = backend.run_python(files, lang.source, test.stdin.encode(), run_limits, env=env,
                                   interpreter=PYTHON_EXE)
        else:
            r = backend.run(files, argv, test.stdin.encode(), run_limits, env=env)
        budget.ran(r)
        failed = failure_verdict(r, lang, timeout_s, run_limits.wall_time_s)
        if failed is not None:
            outcome = TestOutcome(i, failed[0], failed[1], r.wall_time_s)
        else:
            c = compare(r.stdout.decode("utf-8", "replace"), test.stdout, comparator, float_tol=float_tol,
                        case_sensitive=case_sensitive, truncated=r.stdout_truncated, exact_integers=exact_integers)
            outcome = TestOutcome(i, Verdict.ACCEPTED if c.ok else Verdict.WRONG_ANSWER, c.detail, r.wall_time_s)
        outcomes.append(outcome)
        if not outcome.passed and stop_at_first_failure:
            outcomes += [TestOutcome(j, Verdict.NOT_RUN) for j in range(i + 1, n)]
            break
    return outcomes
