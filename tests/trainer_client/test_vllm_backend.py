"""The optional vLLM back-end's glue and its error path (vLLM itself cannot run here).

rollout_from_vllm turns vLLM-shaped outputs (the dataclasses spelling out the fields we
read) into the same Rollout the HF path makes; the back-end refuses clearly, naming
`pip install '.[vllm]'`, when vLLM or CUDA is missing, from the API and the CLI."""
from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from trainer_client.cli import main  # noqa: E402
from trainer_client.config import ConfigError, load_config  # noqa: E402
from trainer_client.rollout import SamplingParams, cat_rollouts, select_rows  # noqa: E402
from trainer_client.tiny_model import build_tokenizer  # noqa: E402
from trainer_client.vllm_backend import (VllmCompletion, VllmLogprob, VllmRequestOutput,  # noqa: E402
                                         VllmUnavailable, require_vllm, rollout_from_vllm,
                                         vllm_problems, vllm_sampling_kwargs)

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def _lp(ids, values):
    """vLLM's per-token log-prob dicts: {sampled id: Logprob} for each position."""
    return [{t: VllmLogprob(v)} for t, v in zip(ids, values)]


def test_vllm_outputs_become_the_hf_rollout_layout():
    tok = build_tokenizer()
    pad, eos = tok.pad_token_id, tok.eos_token_id
    p0 = tok("1+2=", add_special_tokens=False)["input_ids"]          # 4 tokens
    p1 = tok("9=", add_special_tokens=False)["input_ids"]            # 2 tokens
    c_a = tok("3", add_special_tokens=False)["input_ids"] + [eos]    # stopped at EOS
    c_b = tok("12", add_special_tokens=False)["input_ids"]           # hit the length limit
    c_c = [eos]
    c_d = tok("9", add_special_tokens=False)["input_ids"] + [eos]
    outs = [VllmRequestOutput(p0, [VllmCompletion(c_a, _lp(c_a, [-0.5, -0.25]), "stop"),
                                   VllmCompletion(c_b, _lp(c_b, [-1.0, -2.0]), "length")]),
            VllmRequestOutput(p1, [VllmCompletion(c_c, _lp(c_c, [-0.125]), "stop"),
                                   VllmCompletion(c_d, _lp(c_d, [-3.0, -0.75]), "stop")])]
    r = rollout_from_vllm(outs, tok)
    # N = 2 prompts x G = 2; P = 4, L = 2
    assert r.prompt_ids.shape == (4, 4) and r.completion_ids.shape == (4, 2)
    assert r.prompt_ids[0].tolist() == p0 == r.prompt_ids[1].tolist()
    assert r.prompt_ids[2].tolist() == [pad, pad] + p1               # left-padded
    assert r.prompt_mask.tolist() == [[1] * 4, [1] * 4, [0, 0, 1, 1], [0, 0, 1, 1]]
    assert r.completion_ids[2].tolist() == [eos, pad]                # right-padded
    assert r.completion_mask.tolist() == [[1, 1], [1, 1], [1, 0], [1, 1]]   # EOS included
    assert r.truncated.tolist() == [False, True, False, False]
    assert r.texts == ["3", "12", "", "9"]
    assert r.sampler_logprobs.tolist() == [[-0.5, -0.25], [-1.0, -2.0], [-0.125, 0.0],
                                           [-3.0, -0.75]]
    # the rest of the pipeline takes it like an HF rollout
    both = cat_rollouts([r, select_rows(r, torch.tensor([2]))], pad)
    assert both.completion_ids.shape == (5, 2) and both.sampler_logprobs[4].tolist() == [-0.125, 0.0]


def test_vllm_outputs_without_logprobs_or_with_uneven_groups():
    tok = build_tokenizer()
    outs = [VllmRequestOutput([5, 6], [VllmCompletion([7], None, "length")])]
    r = rollout_from_vllm(outs, tok)
    assert r.sampler_logprobs is None and r.truncated.tolist() == [True]
    # an HF rollout has none either: concatenating drops them
    assert cat_rollouts([r, rollout_from_vllm(outs, tok)], tok.pad_token_id).sampler_logprobs is None
    uneven = outs + [VllmRequestOutput([5], [VllmCompletion([7], None, "stop")] * 2)]
    with pytest.raises(ValueError, match="same number of completions"):
        rollout_from_vllm(uneven, tok)


def test_sampling_params_translate_to_vllm():
    kw = vllm_sampling_kwargs(SamplingParams(max_new_tokens=16, temperature=0.7, top_k=0,
                                             top_p=0.9, repetition_penalty=1.1), n=8, seed=3)
    assert kw == dict(n=8, temperature=0.7, top_k=-1, top_p=0.9, repetition_penalty=1.1,
                      max_tokens=16, seed=3, logprobs=0)
    assert vllm_sampling_kwargs(SamplingParams(top_k=20), 1, None)["top_k"] == 20


def test_what_stops_the_vllm_backend():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert vllm_problems(cuda, vllm_importable=True, cuda_available=True) == []
    missing = vllm_problems(cuda, vllm_importable=False, cuda_available=True)
    assert len(missing) == 1 and "pip install '.[vllm]'" in missing[0]
    on_cpu = vllm_problems(cpu, vllm_importable=True, cuda_available=True)
    assert len(on_cpu) == 1 and "needs a CUDA device" in on_cpu[0] and "'cpu'" in on_cpu[0]
    no_gpu = vllm_problems(cuda, vllm_importable=True, cuda_available=False)
    assert len(no_gpu) == 1 and "no CUDA GPU" in no_gpu[0]
    assert len(vllm_problems(cpu, vllm_importable=False, cuda_available=False)) == 2


def test_vllm_backend_refuses_here_with_the_install_command(capsys):
    with pytest.raises(VllmUnavailable, match="needs a CUDA device") as e:
        require_vllm(torch.device("cpu"))
    if not HAVE_VLLM:
        assert "pip install '.[vllm]'" in str(e.value)
    # the CLI stops before connecting to anything (the address has no server)
    rc = main(["train", "--model", "unused", "--reward-address", "127.0.0.1:9",
               "--generation-backend", "vllm", "--device", "cpu", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "sampling.backend vllm cannot run" in err and "needs a CUDA device" in err


def test_config_refuses_combinations_that_are_not_built():
    with pytest.raises(ConfigError, match="fsdp does not take LoRA"):
        load_config(overrides=dict(model="m", dist_strategy="fsdp", grpo=dict(lora_r=4)))
    with pytest.raises(ConfigError, match="vllm does not take LoRA"):
        load_config(overrides=dict(model="m", sampling=dict(backend="vllm"), grpo=dict(lora_r=4)))
    with pytest.raises(ConfigError, match="dist_strategy"):
        load_config(overrides=dict(model="m", dist_strategy="zero3"))
    cfg = load_config(overrides=dict(model="m"))
    assert cfg.dist_strategy == "ddp" and cfg.sampling.backend == "hf"
    assert cfg.sampling.vllm_gpu_memory_utilization == 0.3
