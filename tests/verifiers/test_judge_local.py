"""`local_judge` on tiny causal Llamas built here: generation + parsing, P(yes), batching, failures."""
from __future__ import annotations

import concurrent.futures as cf
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import verifiers  # noqa: E402
import verifiers.judges  # noqa: E402,F401
from verifiers import Status  # noqa: E402
from verifiers.judges import models  # noqa: E402
from verifiers.judges.local_judge import word_token_ids  # noqa: E402
from verifiers.judges.tiny import build_tiny_llama  # noqa: E402

REF = {"prompt": "What is two plus two ?", "reference": "4"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-judges")
    paths = {"seven": str(build_tiny_llama(root / "seven", fixed_token="7")),
             "incorrect": str(build_tiny_llama(root / "incorrect", fixed_token="INCORRECT")),
             "random": str(build_tiny_llama(root / "random", seed=1))}
    yield paths
    models.clear_cache()


def local(model: str, completion: str = "two plus two equals four", reference=REF, **params):
    return verifiers.verify("local_judge", completion, reference, {"model": model, "device": "cpu", **params})


def test_score_mode_generates_and_parses(tiny):
    r = local(tiny["seven"], max_new_tokens=1)
    assert r.status is Status.OK and r.reward == pytest.approx(6 / 9)   # "7" on [1, 10]
    assert r.details["answer"].strip() == "7" and "score 7" in r.reason


def test_verdict_mode(tiny):
    r = local(tiny["incorrect"], mode="verdict", max_new_tokens=1)
    assert r.status is Status.OK and r.reward == 0.0 and "incorrect" in r.reason


def test_unparseable_answer_is_an_error_with_the_raw_text(tiny):
    r = local(tiny["seven"], max_new_tokens=3)                           # "7 7 7": not one score
    assert r.status is Status.ERROR and r.reward is None
    assert "unparseable" in r.reason and "7 7 7" in r.reason


def manual_p_yes(path: str, completion: str) -> float:
    """P(yes)/(P(yes)+P(no)) computed directly, one sequence, no padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from verifiers.judges.templates import DEFAULT_TEMPLATES, new_fence, render_for

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    user = render_for(DEFAULT_TEMPLATES["yes_no"], completion, REF, fence=new_fence(completion))
    text = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)])            # (1, L)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=ids).logits[0, -1].float(), -1)   # (V,)
    p_yes = probs[word_token_ids(tok, ["yes"])].sum().item()
    p_no = probs[word_token_ids(tok, ["no"])].sum().item()
    return p_yes / (p_yes + p_no)


def test_yes_no_probability_matches_a_direct_computation_and_batches(tiny):
    completions = ["four", "the answer is 4", "it is five", "so we get two plus two equals four , the answer is 4",
                   "no", "yes", "3", "the cat sat on the mat"] * 2
    with cf.ThreadPoolExecutor(16) as ex:
        # An untrained model puts little mass on yes/no: accept any mass here (min_yes_no_mass=0).
        results = list(ex.map(lambda c: local(tiny["random"], c, mode="yes_no", max_wait_ms=50,
                                              min_yes_no_mass=0.0), completions))
    assert all(r.status is Status.OK and 0 < r.reward < 1 for r in results), [r.reason for r in results]
    batcher = next(b for k, b in models._BATCHERS.items() if k[0] == "next-token" and k[1][1] == tiny["random"])
    assert max(batcher.batch_sizes) > 1                                  # they shared forward passes
    # Left padding in a batch must not change any row's answer.
    for c, r in list(zip(completions, results))[:8]:
        assert r.reward == pytest.approx(manual_p_yes(tiny["random"], c), abs=1e-4)
    assert len({round(r.reward, 6) for r in results[:8]}) > 1            # the inputs matter
    # With the default floor (0.1) the same answer is not a yes/no answer: ERROR, not a score.
    r = local(tiny["random"], "four", mode="yes_no")
    assert r.status is Status.ERROR and "P(yes)+P(no) = 0.0" in r.reason


def test_model_is_loaded_once_per_path_and_device(tiny):
    a = models.load_model("causal", tiny["seven"], "cpu", "auto")
    b = models.load_model("causal", tiny["seven"], "cpu", "auto")
    assert a is b


def test_load_failure_and_long_prompt_are_errors(tiny, tmp_path):
    r = local(str(tmp_path))                                             # a folder with no model in it
    assert r.status is Status.ERROR and "could not load causal model" in r.reason
    # a prompt too long with the reference alone is the caller's spec: ERROR
    r = local(tiny["seven"], reference={"prompt": "p " * 200, "reference": "4"}, max_input_tokens=100)
    assert r.status is Status.ERROR and "over max_input_tokens 100" in r.reason
    # too long because of the completion: a wrong answer (issue #17, rule of finding 11) ...
    r = local(tiny["seven"], completion="four " * 400, max_input_tokens=300)
    assert r.status is Status.OK and r.reward == 0.0 and "over max_input_tokens 300" in r.reason
    # ... which 1.1.0 (frozen) reported as ERROR
    r = verifiers.verify("local_judge", "four " * 50, REF, {"model": tiny["seven"], "max_input_tokens": 40},
                         version="1.1.0")
    assert r.status is Status.ERROR and "over max_input_tokens 40" in r.reason
    r = local(tiny["seven"], reference="4")                              # no prompt anywhere
    assert r.status is Status.ERROR and "{prompt}" in r.reason


def test_model_roots_restrict_what_a_shared_server_loads(tiny, tmp_path, monkeypatch):
    root = os.path.dirname(tiny["seven"])
    monkeypatch.setenv(models.MODEL_ROOTS_ENV, root)
    r = local(tiny["seven"], max_new_tokens=1)  # inside the root: scored as before
    assert r.status is Status.OK
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "link").symlink_to(tiny["seven"])  # a link into the root is judged by its target: fine
    assert local(str(outside / "link"), max_new_tokens=1).status is Status.OK
    for name in (str(outside), "/etc", "some-org/some-hub-model", root + "/../" + os.path.basename(str(tmp_path))):
        with pytest.raises(verifiers.InvalidParamsError, match="model roots"):
            local(name)
    for kind in ("reward_model", "embedding_similarity"):
        with pytest.raises(verifiers.InvalidParamsError, match="model"):
            verifiers.verify(kind, "x", "y", {"model": str(outside)})


def test_no_verdict_zero_scores_an_answer_without_a_verdict_as_wrong(tiny):
    # the "seven" model always answers "7": no verdict word
    assert local(tiny["seven"], mode="verdict", max_new_tokens=1).status is Status.ERROR
    r = local(tiny["seven"], mode="verdict", max_new_tokens=1, no_verdict="zero")
    assert r.status is Status.OK and r.reward == 0.0 and "no_verdict" in r.reason
