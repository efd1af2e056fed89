"""Versions stay registered when a verifier changes: pinned specs and stored history keep
working (math@1.0.0 a row of math's VERSIONS; the judges' 1.0.0 = 1.1.0, which only added parameters)."""
import verifiers
from verifiers import registry


def test_older_versions_stay_registered_and_newest_is_the_default():
    for name, old, new in (("math", "2.1.0", "3.0.0"), ("format", "1.0.0", "2.0.0"), ("judge", "1.1.0", "1.2.0"),
                           ("local_judge", "1.1.0", "1.2.0"), ("reward_model", "1.1.0", "1.2.0"),
                           ("embedding_similarity", "1.0.0", "1.1.0")):
        assert registry.get(name).version == new
        assert registry.get(name, old).version == old and not registry.is_latest(registry.get(name, old))
        assert [c.version for c in registry.all_versions() if c.name == name][:2] == [new, old]
    assert [c.version for c in registry.all_versions() if c.name == "math"] == ["3.0.0", "2.1.0", "2.0.0", "1.0.0"]


def test_code_keeps_each_version_and_its_parameters():
    # 1.2.0 added `unanswered`; the older versions keep the parameter model they had, so
    # the parameter hashes stored with their scores stay the same
    assert [c.version for c in registry.all_versions() if c.name == "code"] == ["1.2.0", "1.1.0", "1.0.0"]
    new, v11, v10 = (registry.get("code", v) for v in ("1.2.0", "1.1.0", "1.0.0"))
    assert "unanswered" in new.Params.model_fields
    assert v11.Params is v10.Params and "unanswered" not in v11.Params.model_fields
    assert set(new.Params.model_fields) - set(v11.Params.model_fields) == {"unanswered"}


def test_a_compatible_alias_scores_like_its_newer_version():
    judge_old, judge_new = registry.get("judge", "1.0.0"), registry.get("judge", "1.1.0")
    assert issubclass(judge_old, judge_new) and judge_old.Params is judge_new.Params


def test_the_judges_1_1_0_keep_their_reading_and_parameters():
    # 1.2.0 fences the completion and reads only the judge's last line (issue #17); 1.1.0
    # keeps its parameter model, so the parameter hashes stored with its scores stay
    for name in ("judge", "local_judge"):
        assert [c.version for c in registry.all_versions() if c.name == name] == ["1.2.0", "1.1.0", "1.0.0"]
        assert registry.get(name).strict and not registry.get(name, "1.1.0").strict
    for name, added in (("judge", {"max_completion_chars", "no_verdict"}), ("local_judge", {"no_verdict"})):
        new, old = registry.get(name).Params, registry.get(name, "1.1.0").Params
        assert set(new.model_fields) - set(old.model_fields) == added and registry.get(name, "1.0.0").Params is old


def test_the_frozen_math_version_keeps_its_old_verdicts():
    # 1.0.0 accepted rounded decimals by default; 2.0.0 is strict unless told the digits
    assert verifiers.verify("math", "\\boxed{0.333}", "\\frac{1}{3}", version="1.0.0").reward == 1.0
    assert verifiers.verify("math", "\\boxed{0.333}", "\\frac{1}{3}").reward == 0.0
    assert verifiers.verify("math", "\\boxed{0.333}", "\\frac{1}{3}", {"rounding_sig_digits": 3}).reward == 1.0
    # and abstained on an unanswered completion, which 2.0.0 scores 0
    assert verifiers.verify("math", "I give up.", "5", version="1.0.0").status.value == "ABSTAIN"
    assert verifiers.verify("math", "I give up.", "5").reward == 0.0


def test_math_1_0_0_keeps_its_parameters_and_their_hash():
    # stored scores carry params_hash: 1.0.0, now a row of VERSIONS, must hash and describe
    # its parameters exactly as the released package did (values recorded from it)
    from verifiers.core import params_hash

    v1 = registry.get("math", "1.0.0")
    assert set(v1.Params.model_fields) == {"rel_tol", "percent_policy", "ordered_lists", "decimal_rounding"}
    assert params_hash(v1.Params()) == "40536cd7582fc4f7"
    assert params_hash(v1.Params(decimal_rounding=False)) == "9357407955150eca"
    assert v1.Params.model_json_schema()["title"] == "MathParams"
    assert v1.description.startswith("Final answer (\\boxed{}, <answer>, 'the answer is', else the last number)")
    # its rules, not today's: 1.0000001 = 1 within its rel_tol 1e-6 on any decimal; `2,74` is
    # the number 74 (thousands groups only); `25 m²` is not 25 (2.0.0 reads `²` and the unit m)
    assert verifiers.verify("math", "\\boxed{1.0000001}", "1", version="1.0.0").reward == 1.0
    assert verifiers.verify("math", "\\boxed{1.0000001}", "1", version="2.0.0").reward == 0.0
    assert verifiers.verify("math", "so it is 2,74", "74", version="1.0.0").reward == 1.0
    assert verifiers.verify("math", "\\boxed{25 m²}", "25", version="1.0.0").reward == 0.0
    assert verifiers.verify("math", "\\boxed{25 m²}", "25", version="2.0.0").reward == 1.0


def test_math_2_0_0_keeps_its_verdicts_and_parameters():
    # 2.1.0 reads a font around math as the math and a repeated box as one answer; 2.0.0
    # did neither, and replaying its stored scores must give the same rewards
    for completion, reference in (("\\boxed{\\mathbf{8}}", "8"), ("\\boxed{12} \\boxed{12}", "12"),
                                  ("\\boxed{8}", "\\text{8}")):
        assert verifiers.verify("math", completion, reference, version="2.1.0").reward == 1.0
        assert verifiers.verify("math", completion, reference, version="2.0.0").reward == 0.0
    assert registry.get("math", "2.0.0").Params is registry.get("math").Params
    # the rest is unchanged: a wrong answer stays wrong under both
    for version in ("2.0.0", "2.1.0"):
        assert verifiers.verify("math", "\\boxed{\\mathbf{9}}", "8", version=version).reward == 0.0
        assert verifiers.verify("math", "\\boxed{12} \\boxed{13}", "12", version=version).reward == 0.0
