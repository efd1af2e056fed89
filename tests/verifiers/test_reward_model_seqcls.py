"""`reward_model` on tiny Llama sequence classifiers built here: the logit, batching, normalisation."""
from __future__ import annotations

import concurrent.futures as cf
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import verifiers  # noqa: E402
import verifiers.judges  # noqa: E402,F401
from verifiers import Status  # noqa: E402
from verifiers.judges import models  # noqa: E402
from verifiers.judges.tiny import build_tiny_llama  # noqa: E402

PROMPT = "What is two plus two ?"


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-rms")
    paths = {"rm": str(build_tiny_llama(root / "rm", head="seqcls")),
             "plain": str(build_tiny_llama(root / "plain", head="seqcls", chat_template=False, seed=2)),
             "two": str(build_tiny_llama(root / "two", head="seqcls", num_labels=2, seed=3))}
    yield paths
    models.clear_cache()


def score(path: str, completion: str, reference=None, **params):
    ref = {"prompt": PROMPT} if reference is None else reference
    return verifiers.verify("reward_model", completion, ref, {"model": path, "device": "cpu", **params})


def direct_logits(path: str, completion: str, chat: bool = True) -> list[float]:
    """The model called by hand on one unpadded sequence: logits (num_labels,)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    if chat:
        text = tok.apply_chat_template([{"role": "user", "content": PROMPT},
                                        {"role": "assistant", "content": completion}], tokenize=False)
        ids = tok.encode(text, add_special_tokens=False)
    else:
        ids = tok(PROMPT, completion)["input_ids"]
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].tolist()   # (1, num_labels) → (num_labels,)


COMPLETIONS = ["four", "the answer is 4", "so we get two plus two equals four , the answer is 4 .", "five",
               "no", "the cat sat on the mat and the dog sat on the mat", "4", "two plus two is four"]


def test_reward_is_the_logit_and_batching_does_not_change_it(rms):
    with cf.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda c: score(rms["rm"], c, max_wait_ms=50), COMPLETIONS * 2))
    assert all(r.status is Status.OK for r in results), [r.reason for r in results]
    batcher = next(b for k, b in models._BATCHERS.items() if k[0] == "seqcls-score" and k[1][1] == rms["rm"])
    assert max(batcher.batch_sizes) > 1
    for c, r in zip(COMPLETIONS, results):                       # right padding leaves each row's logit alone
        assert r.reward == pytest.approx(direct_logits(rms["rm"], c)[0], abs=1e-4)
        assert r.details["logit"] == r.reward and "logit[0]" in r.reason
    assert len({round(r.reward, 5) for r in results}) > 1


def test_normalisation(rms):
    x = score(rms["rm"], "four").reward
    assert score(rms["rm"], "four", normalize="sigmoid").reward == pytest.approx(1 / (1 + math.exp(-x)))
    assert score(rms["rm"], "four", normalize="sigmoid", scale=2, shift=-1).reward == \
        pytest.approx(1 / (1 + math.exp(-(2 * x - 1))))
    assert score(rms["rm"], "four", normalize="affine", scale=0.5, shift=3).reward == pytest.approx(0.5 * x + 3)


def test_without_a_chat_template_the_pair_is_encoded(rms):
    r = score(rms["plain"], "four")
    assert r.status is Status.OK and r.reward == pytest.approx(direct_logits(rms["plain"], "four", chat=False)[0],
                                                               abs=1e-4)


def test_logit_index_selects_an_output(rms):
    expected = direct_logits(rms["two"], "four")
    assert score(rms["two"], "four", logit_index=1).reward == pytest.approx(expected[1], abs=1e-4)
    r = score(rms["two"], "four", logit_index=2)
    assert r.status is Status.ERROR and "has 2 output(s)" in r.reason


def test_failures_are_errors_not_zero(rms, tmp_path):
    r = score(rms["rm"], "four", reference="4")                   # no prompt anywhere
    assert r.status is Status.ERROR and r.reward is None and "no prompt" in r.reason
    r = score(rms["rm"], "four " * 100, max_length=50)
    assert r.status is Status.ERROR and "over max_length 50" in r.reason
    r = score(str(tmp_path), "four")
    assert r.status is Status.ERROR and "could not load seqcls model" in r.reason


def test_prompt_from_the_caller(rms):
    r = verifiers.verify("reward_model", "four", "ignored gold answer", {"model": rms["rm"], "device": "cpu"},
                         prompt=PROMPT)
    assert r.status is Status.OK and r.reward == pytest.approx(direct_logits(rms["rm"], "four")[0], abs=1e-4)


def test_an_overlong_completion_is_a_wrong_answer_not_an_error(rms):
    # issue #17, rule of finding 11: too long by the completion's own doing is OK with the
    # lowest reward: 0 under sigmoid (its floor), `overlong_reward` on an open scale
    r = score(rms["rm"], "four " * 100, max_length=50, normalize="sigmoid")
    assert r.status is Status.OK and r.reward == 0.0 and "over max_length 50" in r.reason
    r = score(rms["rm"], "four " * 100, max_length=50, overlong_reward=-7.5)
    assert r.status is Status.OK and r.reward == -7.5
    # a raw logit has no floor: without overlong_reward it stays an ERROR that says what to set
    r = score(rms["rm"], "four " * 100, max_length=50)
    assert r.status is Status.ERROR and "overlong_reward" in r.reason
    # the prompt alone too long is the caller's spec: ERROR whatever the setting
    r = score(rms["rm"], "four", {"prompt": "p " * 100}, max_length=50, normalize="sigmoid")
    assert r.status is Status.ERROR and "the prompt alone too" in r.reason
    # 1.1.0 (frozen) keeps its parameters and its ERROR
    r = verifiers.verify("reward_model", "four " * 100, {"prompt": PROMPT},
                         {"model": rms["rm"], "device": "cpu", "max_length": 50, "normalize": "sigmoid"},
                         version="1.1.0")
    assert r.status is Status.ERROR and "over max_length 50" in r.reason
