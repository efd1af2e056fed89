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


# --- a Qwen2-architecture model with a byte-level BPE tokenizer and a ChatML template ------
# Built with transformers' own Qwen2Tokenizer (byte-level BPE, Qwen's pre-tokenizer), so
# that AutoTokenizer loads it back unchanged for a `qwen2` config (see the note above).

CHATML_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
QWEN2_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class Qwen2Spec:
    """Shape of a Qwen2 model. `bpe_vocab` = regular (non-special) tokenizer tokens; the
    model's `vocab_size` may be larger (Qwen pads its embedding to 151936)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    bpe_vocab: int
    max_position_embeddings: int = 32768
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True


# Qwen2.5-0.5B-Instruct's published shape (config.json): 494 M parameters.
QWEN2_5_0_5B = Qwen2Spec(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                         bpe_vocab=151643)
# The same architecture, small enough for a few CPU steps in a test (~0.1 M parameters).
QWEN2_TINY = Qwen2Spec(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=259,
                       bpe_vocab=256, max_position_embeddings=1024)
QWEN2_PRESETS = {"tiny": QWEN2_TINY, "qwen2.5-0.5b": QWEN2_5_0_5B}


def _byte_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE writes bytes as (byte b -> chars[b]):
    printable Latin-1 bytes stand for themselves, the others are shifted past 255."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def build_qwen2_tokenizer(bpe_vocab: int = 256):
    """A Qwen2Tokenizer (byte-level BPE) with `bpe_vocab` regular tokens, the ChatML
    special tokens and chat template. Beyond the 256 bytes, merges are synthetic: every
    pair of bytes, then byte triples, in a fixed order (no corpus, deterministic)."""
    from transformers import Qwen2Tokenizer

    alphabet = _byte_alphabet()
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    pairs = (a + b for a in alphabet for b in alphabet)
    for tok in pairs:
        if len(vocab) >= bpe_vocab:
            break
        merges.append((tok[0], tok[1]))
        vocab[tok] = len(vocab)
    if len(vocab) < bpe_vocab:
        for left in [t for t in vocab if len(t) == 2]:
            for c in alphabet:
                if len(vocab) >= bpe_vocab:
                    break
                merges.append((left, c))
                vocab[left + c] = len(vocab)
    for s in QWEN2_SPECIAL:
        vocab[s] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", unk_token=None,
                         additional_special_tokens=QWEN2_SPECIAL[1:])
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_qwen2_model(out_dir: str | Path, spec: Qwen2Spec | str = QWEN2_TINY,
                      seed: int = 0) -> Path:
    """A randomly initialised Qwen2ForCausalLM of `spec` (a Qwen2Spec or a QWEN2_PRESETS
    name) with build_qwen2_tokenizer(), both `save_pretrained` into `out_dir`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    spec = QWEN2_PRESETS[spec] if isinstance(spec, str) else spec
    tokenizer = build_qwen2_tokenizer(spec.bpe_vocab)
    if len(tokenizer) > spec.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens > vocab_size {spec.vocab_size}")
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=spec.vocab_size, hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings, rope_theta=spec.rope_theta,
        rms_norm_eps=spec.rms_norm_eps, tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=None, eos_token_id=eos, pad_token_id=pad)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
