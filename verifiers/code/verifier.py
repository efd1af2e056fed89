"""The `code` verifier: run the completion's program against the reference's tests in
the sandbox and reward passing them.

    verify(completion, reference, params) -> VerifierResult
      OK       reward 1 when every test passes (partial_credit: the fraction passed);
               the reason names the first failing test and its verdict
               (wrong answer, runtime error, time limit, memory limit, output limit,
               compile error)
               (code@1.2.0, unanswered='zero', the default: no code found, or a fence
               tagged with a language the verifier does not support, is reward 0 with
               the reason: the completion's own fault, which trainers must not skip)
      ABSTAIN  a language this host cannot run (the host's fault); with
               unanswered='abstain' (and in 1.0.0/1.1.0) also no code / unsupported language
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


class CodeParamsV1(Params):
    """code@1.0.0 and 1.1.0's parameters (unchanged, so their stored parameter hashes hold)."""

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
    # The caps bound what one call may hold of a shared sandbox (issue 17.6): a test's wall
    # backstop is WALL_FACTOR x its CPU limit (10 s -> 50.5 s), output is held in the
    # server while it is compared (32 MiB), memory is reserved per run in flight (4 GiB).
    timeout_per_test_s: float = Field(2.0, gt=0, le=10, description="CPU-time limit of one test, s (the wall-clock "
                                                                    "backstop is 5x it + 0.5 s)")
    memory_limit_mb: int = Field(512, ge=16, le=4096, description="memory limit of the program, MiB")
    max_output_bytes: int = Field(8 * MiB, ge=1024, le=32 * MiB, description="stdout cap per run, bytes")
    compile_timeout_s: float = Field(30.0, gt=0, le=60, description="C++ compilation time limit")
    time_budget_s: float = Field(120.0, gt=0, le=300, description="overall budget of one call's runs, wall-clock "
                                                                  "seconds (time waiting for the sandbox excluded)")


class CodeParams(CodeParamsV1):
    unanswered: Literal["zero", "abstain"] = Field("zero", description=(
        "a completion with no code (empty, or only output/text fences) or whose fence names a "
        "language this verifier does not support: reward 0 ('zero': trainers that drop non-OK "
        "samples must not let it escape its penalty) or ABSTAIN. A language this host cannot "
        "run always ABSTAINs"))


@register
class CodeVerifier(Verifier):
    name = "code"
    # 1.1.0: an integer expected token is matched exactly (1.0.0 allowed float_tol);
    # 1.2.0: no code / an unsupported language is reward 0 by default (params.unanswered)
    version = "1.2.0"
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

    @staticmethod
    def _unanswered(params: CodeParamsV1, why: str) -> VerifierResult:
        if getattr(params, "unanswered", "abstain") == "abstain":
            return VerifierResult.abstain(why)
        return VerifierResult.ok(0.0, f"{why}: reward 0 (params.unanswered = 'zero')")

    def verify(self, completion: str, reference: Any, params: CodeParamsV1) -> VerifierResult:
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
                    return self._unanswered(params, found.reason)
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
                    return self._unanswered(params, found.reason)
                lang = LANGUAGES.get(found.language)
                if lang is None:
                    return self._unanswered(params, f"unsupported language {found.language!r}; "
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
class CodeVerifierV1_1(CodeVerifier):
    """code@1.1.0, kept registered for pinned specs and replay: no code, or a fence in a
    language the verifier does not support, ABSTAINs (its parameters have no `unanswered`)."""

    version = "1.1.0"
    Params = CodeParamsV1
    description = CodeVerifier.description + " (1.1.0: no code found ABSTAINs)"


@register
class CodeVerifierV1(CodeVerifierV1_1):
    """code@1.0.0, kept registered so specs pinned to it keep working: besides 1.1.0's
    ABSTAIN on no code, the tokens comparator's 1.0.0 rule (an integer expected token is
    matched by a float-formatted token within float_tol, so `1000000005.0` passed for
    1000000006). The sandbox and harness fixes made since apply to it too: a
    verifier crash or a lingering process was never part of its contract."""

    version = "1.0.0"
    exact_integers = False
    description = CodeVerifier.description + (" (1.0.0: integer expected tokens matched within float_tol; "
                                              "no code found ABSTAINs)")


__all__ = ["CodeVerifier", "CodeVerifierV1_1", "CodeVerifierV1", "CodeParams", "CodeParamsV1",
           "TestOutcome", "Verdict", "PYTHON"]
