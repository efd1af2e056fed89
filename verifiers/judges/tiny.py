"""Tiny Llama models for tests and benchmarks, built from nothing (no download).

    build_tiny_llama(tmp_path / "rm", head="seqcls")                 # a random reward model
    build_tiny_llama(tmp_path / "j", head="causal", fixed_token="7") # always says "7"

The tokenizer is a word-level `tokenizers` model (whitespace + punctuation split) wrapped
in PreTrainedTokenizerFast, with a small chat template; the config is Llama, which
transformers loads back with the same fast tokenizer. `fixed_token` rigs the weights so
that the argmax next token is always that word: every token embeds to the same vector,
the blocks' output projections are zero (so the residual stream stays that vector), and
the LM head scores only `fixed_token`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = (
    [str(i) for i in range(11)]
    + "yes no Yes No YES NO correct incorrect CORRECT INCORRECT Correct Incorrect Verdict verdict Score score".split()
    + "the a an is of to and in it that what answer response task reference question final number on".split()
    + "how much many two three four five six seven eight nine ten plus minus equals times so we get".split()
    + "from with as be are this for by at or if not no one zero value result cat dog sat mat".split()
    + list(".,:;!?()[]{}+-*/=<>'\"#") + ["[[", "]]"]
)
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def tiny_tokenizer(chat_template: bool = True):
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for w in SPECIALS + WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(path: str | Path, *, head: Literal["causal", "seqcls"] = "causal", num_labels: int = 1,
                     fixed_token: str | None = None, hidden_size: int = 32, num_layers: int = 2,
                     chat_template: bool = True, seed: int = 0) -> Path:
    """Build, save and return the folder of a tiny Llama (causal LM or sequence classifier)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    path = Path(path)
    tokenizer = tiny_tokenizer(chat_template)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, initializer_range=0.2, tie_word_embeddings=False,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, num_labels=num_labels)
    torch.manual_seed(seed)
    model = (LlamaForCausalLM if head == "causal" else LlamaForSequenceClassification)(config).eval()
    if fixed_token is not None:
        if head != "causal":
            raise ValueError("fixed_token needs head='causal'")
        target = tokenizer.convert_tokens_to_ids(fixed_token)
        if target == tokenizer.unk_token_id:
            raise ValueError(f"{fixed_token!r} is not in the tiny vocabulary")
        with torch.no_grad():
            model.model.embed_tokens.weight.fill_(1.0)
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.lm_head.weight.zero_()
            model.lm_head.weight[target] = 1.0
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


__all__ = ["build_tiny_llama", "tiny_tokenizer", "WORDS", "SPECIALS"]
