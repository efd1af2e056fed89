"""The code verifier end to end with real sandboxes: function and stdin/stdout tests in
each language, each verdict, partial credit, ABSTAIN and ERROR outcomes."""
from __future__ import annotations

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers import Status, registry
from verifiers.code.languages import LANGUAGES

CODE = registry.get("code")
AVAILABLE, WHY = CODE.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")
FAST = {"timeout_per_test_s": 1.0}

HE = {"prompt": "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n", "entry_point": "add",
      "test": "METADATA = {}\n\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n"
              "    assert candidate(-1, 1) == 0\n    assert True, 'not a test'\n    assert candidate(2, 2) == 4\n"}
# Not splittable: a helper, a loop and a tolerance -> the replay path.
HE_REPLAY = {"entry_point": "add", "prompt": "def add(a, b):\n    pass\n\ndef twice(x):\n    return 2 * x\n",
             "test": "import math\n\ndef check(candidate):\n    for i in range(5):\n"
                     "        assert math.isclose(candidate(i, 0.5), i + 0.5)\n"
                     "    assert candidate(twice(2), 1) == 5\n    xs = [1, 2]\n    assert candidate(*xs) == 3\n"}
STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "5 7\n", "stdout": "12\n"},
                   {"stdin": "0 0\n", "stdout": "0\n"}]}


def verify(completion, reference, **params):
    return verifiers.verify("code", completion, reference, {**FAST, **params})


def py(code: str) -> str:
    return f"Here is my solution:\n```python\n{code}\n```\n"


# -- function tests ------------------------------------------------------------------------

def test_humaneval_continuation_passes():
    r = verify("    return a + b\n", HE)
    assert r.status is Status.OK and r.reward == 1.0 and r.reason == "3/3 tests passed"
    assert r.details["path"] == "fast"


def test_full_function_in_a_fence_passes():
    r = verify(py("def add(a, b):\n    return a + b"), HE)
    assert r.reward == 1.0


def test_wrong_function_fails_naming_the_first_failing_assert():
    r = verify(py("def add(a, b):\n    return a * b"), HE)
    assert r.status is Status.OK and r.reward == 0.0
    assert "first failure: test 1 (line 5): wrong answer" in r.reason and "expected == 3, got 2" in r.reason


def test_partial_credit_counts_passed_asserts():
    # a*b: 1*2=2≠3 ✗, -1*1=-1≠0 ✗, 2*2=4 ✓ -> 1/3
    r = verify(py("def add(a, b):\n    return a * b"), HE, partial_credit=True, stop_at_first_failure=False)
    assert r.reward == pytest.approx(1 / 3) and r.details["verdicts"] == "WWA"
    stopped = verify(py("def add(a, b):\n    return a * b"), HE, partial_credit=True)
    assert stopped.reward == 0.0 and stopped.details["verdicts"] == "W--"


def test_replay_path_handles_helpers_loops_and_tolerances():
    good = verify(py("def add(a, b):\n    return a + b"), HE_REPLAY)
    assert good.reward == 1.0 and good.details["path"] == "replay" and good.reason == "3/3 tests passed"
    # a == 4 is off by one: the loop's last step (i = 4) and candidate(twice(2), 1) fail, candidate(1, 2) passes
    bad = verify(py("def add(a, b):\n    return a + b + (a == 4)"), HE_REPLAY, partial_credit=True,
                 stop_at_first_failure=False)
    assert bad.reward == pytest.approx(1 / 3) and "test 1 (line 4): wrong answer" in bad.reason
    assert bad.details["verdicts"] == "WWA"


def test_mbpp_layout():
    ref = {"test_list": ["assert add(1, 2) == 3", "assert add(2, 3) == 5"], "test_setup_code": "import math"}
    assert verify(py("def add(a, b):\n    return a + b"), ref).reward == 1.0
    assert verify(py("def add(a, b):\n    return a - b"), ref).reward == 0.0


@pytest.mark.parametrize("body, verdict, detail", [
    ("    while True: pass", "time limit", ""),
    ("    return [0] * (10 ** 10)", "memory limit", "MemoryError"),
    ("    raise ValueError('bad input')", "runtime error", "ValueError: bad input"),
    ("    return 'x' * 3_000_000", "output limit", ""),
    ("    return a +* b", "compile error", "SyntaxError"),
    ("    return str(a + b)", "wrong answer", "got '3'"),
])
def test_function_verdicts(body, verdict, detail):
    r = verify(py(f"def add(a, b):\n{body}"), HE, max_output_bytes=1 << 20, memory_limit_mb=256)
    assert r.status is Status.OK and r.reward == 0.0
    assert r.details["first_failure"]["verdict"] == verdict and detail in r.reason


def test_function_tests_exceptions_the_test_expects_are_fine():
    ref = {"entry_point": "f", "test": "def check(candidate):\n    try:\n        candidate(-1)\n"
                                       "        assert False\n    except ValueError:\n        pass\n"
                                       "    assert candidate(2) == 4\n"}
    assert verify(py("def f(x):\n    if x < 0:\n        raise ValueError\n    return x * 2"), ref).reward == 1.0
    assert verify(py("def f(x):\n    return x * 2"), ref).reward == 0.0


def test_mutated_arguments_are_mirrored_to_the_test():
    ref = {"entry_point": "sort_in_place", "test": "def check(candidate):\n    xs = [3, 1, 2]\n    candidate(xs)\n"
                                                   "    assert xs == [1, 2, 3]\n"}
    assert verify(py("def sort_in_place(v):\n    v.sort()"), ref).reward == 1.0
    assert verify(py("def sort_in_place(v):\n    pass"), ref).reward == 0.0


def test_candidate_failing_between_tests_fails_the_rest_not_the_verifier():
    # `y = helper(1)` calls the candidate but is not a test itself; when the call raises,
    # the remaining tests fail (runtime error), it is not the reference's fault (ERROR).
    ref = {"entry_point": "f", "test": "def check(candidate):\n    def helper(x):\n        return candidate(x)\n"
                                       "    y = helper(1)\n    assert y == 2\n    assert candidate(3) == 6\n"}
    assert verify(py("def f(x):\n    return 2 * x"), ref).reward == 1.0
    r = verify(py("def f(x):\n    raise ValueError('no')"), ref)
    assert r.status is Status.OK and r.reward == 0.0
    assert r.details["first_failure"]["verdict"] == "runtime error" and "ValueError" in r.reason


def test_overall_budget_running_out_fails_on_time_never_timeout():
    ref = {"tests": [{"stdin": "", "stdout": "1\n"}] * 8}
    r = verify(py("import time\ntime.sleep(0.4)\nprint(1)"), ref, time_budget_s=1.5, partial_credit=True)
    assert r.status is Status.OK and 0 < r.reward < 1
    assert r.details["first_failure"]["verdict"] == "time limit" and "overall time budget" in r.reason


def test_unreplayable_test_is_an_error_not_a_reward():
    ref = {"entry_point": "apply", "test": "def check(candidate):\n    assert candidate(lambda x: x + 1, 1) == 2\n"}
    r = verify(py("def apply(f, x):\n    return f(x)"), ref)
    assert r.status is Status.ERROR and r.reward is None and "cannot cross the sandbox boundary" in r.reason


# -- stdin/stdout tests ------------------------------------------------------------------------

@pytest.mark.parametrize("language, completion", [
    ("python", py("a, b = map(int, input().split())\nprint(a + b)")),
    ("cpp", "```cpp\n#include <cstdio>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);}\n```"),
    ("javascript", "```javascript\nconst [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/)"
                   ".map(Number);\nconsole.log(a + b);\n```"),
])
def test_stdio_in_each_language(language, completion):
    if LANGUAGES[language].available()[1]:
        pytest.skip(f"{language} not installed")
    r = verify(completion, STDIO)
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    assert r.details["language"] == language


@pytest.mark.parametrize("program, params, verdict, detail", [
    ("print(3)", {}, "wrong answer", "test 2: wrong answer (token 1: expected '12', got '3')"),
    ("import sys\nsys.exit(3)", {}, "runtime error", "exit status 3"),
    ("raise KeyError('k')", {}, "runtime error", "KeyError"),
    ("while True: pass", {"timeout_per_test_s": 0.5}, "time limit", ""),
    ("import time\ntime.sleep(60)", {"timeout_per_test_s": 0.5}, "time limit", "wall-clock"),
    ("x = bytearray(1 << 30)", {"memory_limit_mb": 64}, "memory limit", "MemoryError"),
    ("print('9' * 100000)", {"max_output_bytes": 4096}, "output limit", ""),
    ("print(3", {}, "compile error", "SyntaxError"),
])
def test_stdio_verdicts(program, params, verdict, detail):
    r = verify(py(program), STDIO, **params)
    assert r.status is Status.OK and r.reward == 0.0
    assert r.details["first_failure"]["verdict"] == verdict and detail in r.reason


def test_cpp_compile_error_and_memory_limit():
    if LANGUAGES["cpp"].available()[1]:
        pytest.skip("g++ not installed")
    ce = verify("```cpp\nint main( {\n```", STDIO)
    assert ce.details["first_failure"]["verdict"] == "compile error" and "error" in ce.reason
    mle = verify("```cpp\n#include <vector>\nint main(){std::vector<char> v(1L<<31, 1); return v[5];}\n```", STDIO,
                 memory_limit_mb=64)
    assert mle.details["first_failure"]["verdict"] == "memory limit"


def test_stdio_partial_credit_and_comparators():
    program = py("a, b = map(int, input().split())\nprint(a + b if a else 'zero')")
    r = verify(program, STDIO, partial_credit=True, stop_at_first_failure=False)
    assert r.reward == pytest.approx(2 / 3) and r.details["verdicts"] == "AAW"
    spaced = py("a, b = map(int, input().split())\nprint(' ', a + b, '  ')")
    assert verify(spaced, STDIO).reward == 1.0                        # tokens
    assert verify(spaced, STDIO, comparator="lines").reward == 0.0    # leading spaces count
    assert verify(spaced, STDIO, comparator="exact").reward == 0.0


@pytest.mark.parametrize("completion, reference, why", [
    ("", STDIO, "empty completion"),
    ("```text\n3\n```", STDIO, "hold no code"),                      # the answer as output, no program
    ("```rust\nfn main() {}\n```", STDIO, "unsupported language 'rust'"),
    ("```cpp\nint main(){}\n```", HE, "these tests need Python"),     # function tests are Python
])
def test_no_code_is_a_zero_reward_unless_asked_to_abstain(completion, reference, why):
    # A trainer drops non-OK samples: an ABSTAIN here would let a policy escape every wrong
    # answer by writing no program, or one in a language nobody runs (code@1.2.0).
    r = verify(completion, reference)
    assert r.status is Status.OK and r.reward == 0.0 and why in r.reason, r.reason
    assert "params.unanswered = 'zero'" in r.reason
    r = verify(completion, reference, unanswered="abstain")
    assert r.status is Status.ABSTAIN and why in r.reason, r.reason
    old = verifiers.verify("code", completion, reference, FAST, version="1.1.0")   # as 1.1.0 scored it
    assert old.status is Status.ABSTAIN and why in old.reason, old.reason


def test_available_reports_languages_and_limits():
    ok, why = CODE.available()
    assert ok and "languages: python" in why and "memory_cgroup" in why and "namespaces" in why
    assert CODE.thread_pool == "sandbox" and not CODE.isolated


def test_no_sandbox_is_an_error_never_an_unsandboxed_run(monkeypatch):
    from verifiers import sandbox
    from verifiers.sandbox import BubblewrapBackend
    monkeypatch.setattr(sandbox, "_default", BubblewrapBackend(bwrap="/nonexistent/bwrap"))
    ok, why = CODE.available()
    assert not ok and "bubblewrap not found" in why
    r = verify(py("print(3)"), STDIO)
    assert r.status is Status.ERROR and "no sandbox" in r.reason
