"""Build and save the demo's tiny causal LM and its character-level tokenizer.

The model is a small Llama (`LlamaConfig`), randomly initialised; the tokenizer is a
`tokenizers` WordLevel model over single characters, plus the four R1 tags as whole
tokens, wrapped in `PreTrainedTokenizerFast`. Both are written with `save_pretrained`
so that the trainer loads them back with `AutoModelForCausalLM` / `AutoTokenizer`,
the same path a hub model takes.

(A Llama config is used on purpose: transformers 5 picks a tokenizer class from the
model type, and e.g. a Qwen2 config would load Qwen2Tokenizer, replacing this
tokenizer's pre-tokenizer.)
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]
CHARS = list(string.digits + string.ascii_letters + " +-*/=().,:;?!'\"%$#&_<>[]{}^|\n")


@dataclass(frozen=True)
class TinyModelSpec:
    """Size of the tiny Llama. Defaults: ~0.4 M parameters, fast on 2 CPU cores."""

    hidden_size: int = 96
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 128
    seed: int = 0


def build_tokenizer():
    """A character-level `PreTrainedTokenizerFast` (pad 0, bos 1, eos 2, unk 3)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + TAG_TOKENS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # Tags first (whole tokens), then every other character on its own.
    tags = "|".join(t.replace("/", "\\/") for t in TAG_TOKENS)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f"{tags}|[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()                    # concatenate, no spaces between chars
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.add_tokens(TAG_TOKENS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


def build_tiny_model(out_dir: str | Path, spec: TinyModelSpec = TinyModelSpec()) -> Path:
    """Create the tiny model + tokenizer and `save_pretrained` both into `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
