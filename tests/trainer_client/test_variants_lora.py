"""LoRA on the tiny model: only adapters train, the reference is the base with adapters
disabled (no second copy), refresh and saving."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("peft")

from trainer_client.lora import Reference, apply_lora, save_model  # noqa: E402
from trainer_client.rollout import token_logprobs  # noqa: E402
from trainer_client.tiny_model import TinyModelSpec, build_tiny_model  # noqa: E402
from trainer_client.trainer import load_policy  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = build_tiny_model(tmp_path_factory.mktemp("tiny"), TinyModelSpec(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    return d


def _batch():
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(4, 40, (3, 5), generator=g)
    comp = torch.randint(4, 40, (3, 4), generator=g)
    return prompt, torch.ones_like(prompt), comp, torch.ones_like(comp)


def test_only_adapters_change_and_reference_is_the_base(tiny, tmp_path):
    base, tok = load_policy(str(tiny), torch.device("cpu"))
    base_logp, _ = token_logprobs(base, *_batch())
    model = apply_lora(load_policy(str(tiny), torch.device("cpu"))[0], r=4, alpha=8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        logp, _ = token_logprobs(model, *_batch())
        (-logp.mean()).backward()
        opt.step()
        opt.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable          # only adapter weights moved
    assert any("lora_B" in n for n in changed)

    ref = Reference(model)
    assert ref.kind == "adapters_off" and ref.copy is None       # no second copy
    with torch.no_grad(), ref.context():
        ref_logp, _ = token_logprobs(ref.module(), *_batch())
        pol_logp = None
    with torch.no_grad():
        pol_logp, _ = token_logprobs(model, *_batch())
    assert torch.allclose(ref_logp, base_logp, atol=1e-6)         # adapters off = base
    assert not torch.allclose(pol_logp, base_logp, atol=1e-4)     # the policy moved

    # refresh: the policy becomes the reference, and the policy itself is unchanged
    ref.refresh()
    with torch.no_grad(), ref.context():
        ref2, _ = token_logprobs(ref.module(), *_batch())
    with torch.no_grad():
        pol2, _ = token_logprobs(model, *_batch())
    assert torch.allclose(ref2, pol_logp, atol=1e-5) and torch.allclose(pol2, pol_logp, atol=1e-5)

    # save: adapters alone, or merged full weights
    save_model(model, tok, tmp_path / "ad")
    assert (tmp_path / "ad" / "adapter_config.json").exists()
    save_model(model, tok, tmp_path / "merged", merged=True)
    assert (tmp_path / "merged" / "config.json").exists()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged, _ = load_policy(str(tmp_path / "merged"), torch.device("cpu"))
    with torch.no_grad():
        m_logp, _ = token_logprobs(merged, *_batch())
    assert torch.allclose(m_logp, pol_logp, atol=1e-5)


def test_full_reference_copy_refresh(tiny):
    model, _ = load_policy(str(tiny), torch.device("cpu"))
    ref = Reference(model)
    assert ref.kind == "copy" and ref.copy is not model
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    assert not torch.equal(next(model.parameters()), next(ref.copy.parameters()))
    ref.refresh()
    assert torch.equal(next(model.parameters()), next(ref.copy.parameters()))
