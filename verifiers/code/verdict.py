"""Verdicts of one test and how a list of them becomes a reward and a reason. Pure."""
from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass


class Verdict(str, enum.Enum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong answer"
    RUNTIME_ERROR = "runtime error"
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    OUTPUT_LIMIT = "output limit"
    COMPILE_ERROR = "compile error"
    NOT_RUN = "not run"   # after a stop at the first failure

    @property
    def short(self) -> str:
        return _SHORT[self]


_SHORT = {Verdict.ACCEPTED: "AC", Verdict.WRONG_ANSWER: "WA", Verdict.RUNTIME_ERROR: "RE",
          Verdict.TIME_LIMIT: "TLE", Verdict.MEMORY_LIMIT: "MLE", Verdict.OUTPUT_LIMIT: "OLE",
          Verdict.COMPILE_ERROR: "CE", Verdict.NOT_RUN: "-"}


@dataclass(frozen=True)
class TestOutcome:
    index: int                # 0-based position among the reference's tests
    verdict: Verdict
    detail: str = ""
    time_s: float | None = None
    where: str = ""           # "test 3", "assert on line 12"

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


def summarize(outcomes: list[TestOutcome], partial_credit: bool) -> tuple[float, str, dict]:
    """(reward, reason, details) for a list of per-test outcomes.

    Reward: 1 when every test passed; with `partial_credit` the fraction passed, else 0.
    The reason names the first failing test and its verdict."""
    n = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    reward = 1.0 if n and passed == n else (passed / n if partial_credit and n else 0.0)
    first = next((o for o in outcomes if not o.passed and o.verdict is not Verdict.NOT_RUN), None)
    reason = f"{passed}/{n} tests passed"
    if first is not None:
        where = first.where or f"test {first.index + 1}"
        reason += f"; first failure: {where}: {first.verdict.value}" + (f" ({first.detail})" if first.detail else "")
    counts = Counter(o.verdict.short for o in outcomes)
    details = {"passed": passed, "total": n, "verdicts": "".join(o.verdict.short[0] if o.verdict is not Verdict.NOT_RUN
                                                                else "-" for o in outcomes)[:2000],
               "counts": dict(counts)}
    if first is not None:
        details["first_failure"] = {"test": first.index + 1, "verdict": first.verdict.value, "detail": first.detail}
    return reward, reason, details
