"""The `code` verifier: run the completion's program against the reference's tests in
the sandbox and reward passing them.

    verify(completion, reference, params) -> VerifierResult
      OK       reward 1 when every test passes (partial_credit: the fraction passed);
               the reason names the first failing test and its verdict
               (wrong answer, runtime error, time limit, memory limit, output limit,
               compile error)
      ABSTAIN  no code found, or a language this host cannot run
      ERROR    no sandbox on this host, or tests the harness cannot evaluate safely
    Never TIMEOUT for a slow program: time spent running the candidate is its own, so when
    the overall budget (`time_budget_s`) runs out the tests not yet run fail on time.

It waits on sandboxed subprocesses, so it runs on the server's "sandbox" thread pool
(`isolated=False, thread_pool="sandbox"`): the sandbox isolates, the thread only waits,
and a queue of slow programs never delays the other verifiers.
"""
from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from ..core import Params, Verifier, VerifierResult
from ..registry import register
from ..sandbox import SandboxError, default_backend
from .extract import LANGUAGE_NAMES, NoCode, extract
from .functests import HarnessError, run_function_tests
from .languages import LANGUAGES, PYTHON, available_languages
from .reference import FunctionReference, StdioReference, parse_reference
from .stdio import Budget, run_stdio_tests
from .verdict import TestOutcome, Verdict, summarize

MiB = 1 << 20


class CodeParams(Params):
    language: Literal["auto", "python", "cpp", "javascript"] = Field(
        "auto", description="stdin/stdout tests: the program's language; auto = the code block's tag "
                            "(untagged = python). Function tests are always python")
    comparator: Literal["tokens", "lines", "exact"] = Field(
        "tokens", description="stdin/stdout output comparison: tokens (whitespace-split; an integer expected "
                              "token needs exactly its value, an expected token with a fraction/exponent is "
                              "matched within float_tol), lines (trailing whitespace ignored), exact")
    float_tol: float = Field(1e-6, ge=0, le=1, description="tokens comparator, expected tokens with a fraction or "
                                                          "exponent only: |got - want| <= float_tol (absolute) or "
                                                          "<= float_tol * |want| (relative); integer expected "
                                                          "tokens are always compared exactly")
    case_sensitive: bool = Field(True, description="compare output text case-sensitively")
    partial_credit: bool = Field(False, description="reward = fraction of tests passed (else all or nothing)")
    stop_at_first_failure: bool = Field(True, description="stop at the first failing test (the rest count as failed)")
    max_tests: int | None = Field(None, ge=1, description="run only the first N tests of the reference")
    timeout_per_test_s: float = Field(2.0, gt=0, le=60, description="time limit of one test (CPU and wall clock)")
    memory_limit_mb: int = Field(512, ge=16, le=16384, description="memory limit of the program, MiB")
    max_output_bytes: int = Field(8 * MiB, ge=1024, le=256 * MiB, description="stdout cap per run, bytes")
    compile_timeout_s: float = Field(30.0, gt=0, le=300, description="C++ compilation time limit")
    time_budget_s: float = Field(120.0, gt=0, le=1800, description="overall wall-clock budget of one call")


@register
class CodeVerifier(Verifier):
    name = "code"
    version = "1.1.0"   # 1.1.0: an integer expected token is matched exactly (1.0.0 allowed float_tol)
    exact_integers = True
    description = ("Runs the completion's program (last fenced block) against the reference's tests in a "
                   "sandbox (bubblewrap locally, or Docker with a warm pool): function tests (HumanEval/MBPP: test + entry_point) or stdin/stdout "
                   "tests (CodeContests/APPS: tests[{stdin, stdout}], Python, C++, JavaScript). Results are "
                   "compared outside the program's process; reward 1 when all pass.")
    Params = CodeParams
    isolated = False
    thread_pool = "sandbox"
    timeout_s = 120.0

    @classmethod
    def check_reference(cls, reference: Any) -> None:
        super().check_reference(reference)
        parse_reference(reference)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        backend = default_backend()
        ok, why = backend.available()
        if not ok:
            return False, why
        langs = available_languages(backend)
        if langs["python"]:
            return False, f"python: {langs['python']}"
        usable = ", ".join(n for n, w in langs.items() if not w)
        missing = "; ".join(f"{n} unavailable ({w})" for n, w in langs.items() if w)
        return True, f"languages: {usable}" + (f"; {missing}" if missing else "") + f"; {why}"

    def verify(self, completion: str, reference: Any, params: CodeParams) -> VerifierResult:
        ref = parse_reference(reference)
        backend = default_backend()
        ok, why = backend.available()
        if not ok:
            return VerifierResult.error(f"no sandbox on this host: {why}")
        budget = Budget(time.monotonic() + params.time_budget_s, params.time_budget_s)
        common = dict(timeout_s=params.timeout_per_test_s, memory_bytes=params.memory_limit_mb * MiB,
                      output_bytes=params.max_output_bytes, budget=budget)
        try:
            if isinstance(ref, FunctionReference):
                if params.language not in ("auto", "python"):
                    return VerifierResult.abstain(f"function tests are Python; params.language is {params.language}")
                found = extract(completion, "python")
                if isinstance(found, NoCode):
                    return VerifierResult.abstain(found.reason)
                outcomes, info = run_function_tests(backend, found.code, ref,
                                                    stop_at_first_failure=params.stop_at_first_failure, **common)
                if params.max_tests is not None:
                    outcomes = outcomes[:params.max_tests]
                info.update(language="python", extracted=found.how)
            else:
                assert isinstance(ref, StdioReference)
                want = None if params.language == "auto" else params.language
                found = extract(completion, want)
                if isinstance(found, NoCode):
                    return VerifierResult.abstain(found.reason)
                lang = LANGUAGES.get(found.language)
                if lang is None:
                    return VerifierResult.abstain(f"unsupported language {found.language!r}; "
                                                  f"supported: {', '.join(LANGUAGES)}")
                lang_ok, lang_why = lang.available(backend)
                if not lang_ok:
                    return VerifierResult.abstain(f"{LANGUAGE_NAMES[lang.name]} cannot run on this host: {lang_why}")
                if params.max_tests is not None:
                    ref = StdioReference(ref.tests[:params.max_tests])
                outcomes = run_stdio_tests(backend, lang, found.code, ref, compile_timeout_s=params.compile_timeout_s,
                                           comparator=params.comparator, float_tol=params.float_tol,
                                           exact_integers=self.exact_integers,
                                           case_sensitive=params.case_sensitive,
                                           stop_at_first_failure=params.stop_at_first_failure, **common)
                info = {"language": lang.name, "extracted": found.how, "path": "stdio"}
        except HarnessError as e:
            return VerifierResult.error(str(e))
        except SandboxError as e:
            return VerifierResult.error(f"sandbox failure: {e}")
        reward, reason, details = summarize(outcomes, params.partial_credit)
        return VerifierResult.ok(reward, reason, **details, **info)


@register
class CodeVerifierV1(CodeVerifier):
    """code@1.0.0, kept registered so specs pinned to it keep working: its one scoring
    difference is the tokens comparator's 1.0.0 rule (an integer expected token is
    matched by a float-formatted token within float_tol, so `1000000005.0` passed for
    1000000006). The sandbox and harness fixes made since apply to it too: a
    verifier crash or a lingering process was never part of its contract."""

    version = "1.0.0"
    exact_integers = False
    description = CodeVerifier.description + " (1.0.0: integer expected tokens matched within float_tol)"


__all__ = ["CodeVerifier", "CodeVerifierV1", "CodeParams", "TestOutcome", "Verdict", "PYTHON"]
