"""What a reward hacker prints, and inputs built to exhaust the grader: no credit, and
every such input ends as a wrong answer (OK 0) within its bound: the verifier's own budget
(`MathRules.answer_budget_s`) runs out before the pool's hard limit, which stays the
backstop (tests/verifiers/test_pool.py)."""
import pytest

from verifiers import Status
from verifiers.math.verifier import MathVerifier
from verifiers.pool import VerifierPool

from ._grade import REJECT, check

CHEATS = [
    ("\\boxed{3 \\text{ or } 4}", "3"),
    ("\\boxed{3, 4}", "3"),
    ("\\boxed{1, 2, 3, 4, 5}", "3"),
    ("\\boxed{\\pm 3}", "3"),
    ("\\boxed{}", "3"),
    ("The answer is not 3. \\boxed{4}", "3"),
    ("\\boxed{3} is what a naive approach gives, but the correct answer is \\boxed{5}", "3"),
    ("\\boxed{x}", "2x + 1"),
    ("\\boxed{(-\\infty, \\infty)}", "(1, 2)"),
    ("\\boxed{x > 0}", "x > 1"),
    ("\\boxed{\\text{3}} and also \\boxed{\\text{any real number}}", "3"),
    ("\\boxed{3 = 3}", "3"),
    ("\\boxed{\\{1, 2, 3, 4, 5, 6, 7, 8, 9, 10\\}}", "\\{3, 7\\}"),
    ("\\boxed{3 + 0i \\text{ or } 4}", "3"),
    ("\\boxed{\\frac{1}{2} \\approx 0.3}", "0.3"),  # the exact form before \approx is the answer
    ("\\boxed{3\\ldots}", "3"),
]


@pytest.mark.parametrize("completion,reference", CHEATS)
def test_cheats_earn_nothing(completion, reference):
    check(completion, reference, REJECT)


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=1)
    p.warm_up()
    yield p
    p.close()


EXHAUSTING = [
    "\\boxed{9^{9^{9^9}}}",
    "\\boxed{9^9^9^9}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{(10^{9})!}",
    "\\boxed{\\binom{10^9}{5}}",
    "\\boxed{" + "(" * 60 + "1" + ")" * 60 + "}",
    "\\boxed{" + "9" * 5000 + "}",
    "\\boxed{\\sum_{k=1}^{10^9} k}",
    "\\boxed{x^{100} - 3x + 1 > 0}",
    "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}}^{256}}",
    "\\boxed{" + "\\mathbf{" * 90 + "8" + "}" * 90 + "}",  # fonts unwrapped once each, not per level
    "\\boxed{" + "\\text{a " * 90 + "8" + "}" * 90 + "}",
    "\\boxed{" + "\\mathbf{" * 5000 + "8" + "}" * 5000 + "}",
    "\\boxed{7}" + "\\   " * 20 + "X\\boxed{7}",  # issue 17 #11: 2.x's box gaps backtracked exponentially
]


@pytest.mark.parametrize("completion", EXHAUSTING)
def test_exhausting_inputs_end_within_their_bound(pool, completion):
    # the completion's own content made it hard: a wrong answer (OK 0, with the reason), never
    # a TIMEOUT or ABSTAIN that a trainer would leave out of the group (issue 17, finding 11)
    result, _ = pool.submit("math", MathVerifier.version, completion, "1", {}, 3.0).result(timeout=60)
    assert result.status is Status.OK and result.reward == 0.0, result.reason
