"""Sampling and log-probs on a tiny model built and loaded the real way (save_pretrained,
AutoModelForCausalLM / AutoTokenizer)."""
from __future__ import annotations

import pytest
import torch

from trainer_client.rollout import (SamplingParams, cat_rollouts, completion_mask_from_ids,
                                    generate, token_logprobs)
from trainer_client.tiny_model import TAG_TOKENS, TinyModelSpec, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_model(tmp_path_factory.mktemp("tiny"), TinyModelSpec(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_tokenizer_round_trip_is_char_level_with_tag_tokens(tiny):
    _, tok = tiny
    text = "Calculate 4 + 5.\n<think>4+5=9</think><answer>9</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    # 25 characters before "<think>", 5 inside, 1 in <answer>, and 4 tag tokens
    assert len(ids) == len("Calculate 4 + 5.\n") + len("4+5=9") + len("9") + 4
    for tag in TAG_TOKENS:
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)


def test_completion_mask_table():
    eos = 2
    ids = torch.tensor([[5, 6, 2, 0, 0],     # EOS at 2: keep 0..2
                        [5, 6, 7, 8, 9],     # no EOS (truncated): keep all
                        [2, 0, 0, 0, 0]])    # EOS first: keep only it
    assert completion_mask_from_ids(ids, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1],
                                                           [1, 0, 0, 0, 0]]


def test_generate_shapes_and_logprobs_match_the_sampler(tiny):
    model, tok = tiny
    prompts = ["Calculate 1 + 2.\n", "Calculate 10 - 8 + 0.\n"]   # different lengths: left padding
    G, L = 3, 6
    ro = generate(model, tok, prompts, G, SamplingParams(max_new_tokens=L), seed=0)
    N = len(prompts) * G
    assert ro.prompt_ids.shape[0] == N and ro.prompt_mask.shape == ro.prompt_ids.shape
    assert ro.completion_ids.shape == (N, L) and ro.completion_mask.shape == (N, L)
    assert len(ro.texts) == N and ro.truncated.shape == (N,)
    # prompt-major: rows 0..G-1 are prompt 0
    assert torch.equal(ro.prompt_ids[0], ro.prompt_ids[G - 1])
    assert not torch.equal(ro.prompt_ids[0], ro.prompt_ids[G])
    # same seed, same samples
    again = generate(model, tok, prompts, G, SamplingParams(max_new_tokens=L), seed=0)
    assert torch.equal(ro.completion_ids, again.completion_ids)

    # the trainer's forward pass gives the sampler's log-probs (same positions, padding)
    torch.manual_seed(0)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=L, do_sample=True, num_return_sequences=G,
                         output_logits=True, return_dict_in_generate=True,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         top_k=None, top_p=1.0, temperature=1.0)
    comp = out.sequences[:, enc["input_ids"].shape[1]:]
    sampler = torch.stack(out.logits, 1).log_softmax(-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
    mask = completion_mask_from_ids(comp, tok.eos_token_id)
    with torch.no_grad():
        logp, ent = token_logprobs(model, enc["input_ids"].repeat_interleave(G, 0),
                                   enc["attention_mask"].repeat_interleave(G, 0), comp, mask,
                                   with_entropy=True)
    assert logp.shape == ent.shape == comp.shape
    assert torch.allclose((logp * mask), (sampler * mask), atol=1e-4)
    assert (ent >= 0).all()


def test_greedy_and_cat_rollouts(tiny):
    model, tok = tiny
    a = generate(model, tok, ["Calculate 1 + 2.\n"], 1, SamplingParams(max_new_tokens=3,
                                                                       temperature=0.0))
    b = generate(model, tok, ["Calculate 10 - 8 + 0.\n"], 2, SamplingParams(max_new_tokens=5))
    both = cat_rollouts([a, b], tok.pad_token_id)
    assert both.prompt_ids.shape == (3, b.prompt_ids.shape[1])
    assert both.completion_ids.shape[0] == 3
    assert both.completion_ids.shape[1] == max(a.completion_ids.shape[1], b.completion_ids.shape[1])
    assert both.texts == a.texts + b.texts
    assert both.completion_mask[0, a.completion_ids.shape[1]:].sum() == 0    # right padding
