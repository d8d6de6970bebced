"""Tiny random-weight checkpoints of common open-model families, each with its own tokenizer.

What a team's ``--base`` folder looks like, built and saved by the tests (nothing is downloaded):
a byte-level BPE vocabulary trained on a few sentences, dressed in the family's conventions.

- ``gpt2``: GPT2Tokenizer; ``<|endoftext|>`` is bos, eos and unk; no pad; no chat template.
- ``llama3``: Llama 3's tokenizer setup (``<|begin_of_text|>`` added in front of every
  encoding, ``<|end_of_text|>`` eos, no pad) and Llama 3 Instruct's own chat template
  (header tokens, ``<|eot_id|>``), as Llama 3.2 base checkpoints ship it.
- ``llama2``: ``<s>`` added in front, ``</s>`` eos, ``<unk>``; no chat template (TinyLlama,
  Llama 2 and SmolLM-style bases without one).
- ``qwen2``: Qwen2Tokenizer (``<|endoftext|>`` eos and pad, no bos) with ``<|im_start|>`` /
  ``<|im_end|>`` and Qwen2's ChatML template, default system message included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTEXT = 256  # positions of the nano models (the writer's brief leaves room for a part of an article)

# Meta-Llama-3-8B-Instruct's chat template, verbatim.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Qwen2-7B-Instruct's chat template, verbatim.
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """What a family's checkpoint uses, as a fine-tuned chat model of it should keep using."""

    name: str
    special: tuple[str, ...]  # special tokens of the vocabulary, in id order from 0
    bos: str | None  # the bos token (None: the family has none)
    adds_bos: bool  # whether the tokenizer puts bos in front of every encoding
    base_eos: str  # the base checkpoint's eos
    pad: str  # the pad a chat fine-tune of it uses
    end_of_turn: str  # the token that closes an assistant turn (and is eos after fine-tuning)
    assistant_prompt: str  # how the generation prompt ends, as text
    template: str | None


FAMILIES = {
    "gpt2": Family("gpt2", ("<|endoftext|>",), "<|endoftext|>", False, "<|endoftext|>", "<|endoftext|>",
                   "<|end|>", "<|assistant|>", None),
    "llama3": Family("llama3", ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                "<|eot_id|>"), "<|begin_of_text|>", True, "<|end_of_text|>", "<|end_of_text|>",
                     "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n", LLAMA3_TEMPLATE),
    "llama2": Family("llama2", ("<unk>", "<s>", "</s>"), "<s>", True, "</s>", "</s>", "<|end|>", "<|assistant|>",
                     None),
    "qwen2": Family("qwen2", ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), None, False, "<|endoftext|>",
                    "<|endoftext|>", "<|im_end|>", "<|im_start|>assistant\n", QWEN2_TEMPLATE),
}


def build_tokenizer(family: Family, texts: Sequence[str], vocab_size: int = 600) -> Any:
    """A tokenizer of ``family``'s kind whose BPE vocabulary is trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(list(texts), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(family.special), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(core.to_str())["model"]
    vocab, merges = model["vocab"], [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    if family.name == "gpt2":
        from transformers import GPT2Tokenizer

        return GPT2Tokenizer(vocab=vocab, merges=merges, model_max_length=1024)
    if family.name == "qwen2":
        from transformers import Qwen2Tokenizer

        tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, model_max_length=32768,
                             additional_special_tokens=["<|im_start|>", "<|im_end|>"])
        tok.chat_template = family.template
        return tok

    from transformers import PreTrainedTokenizerFast

    # Llama 3 (and Llama 2's) tokenizer.json: a post-processor puts bos in front of every sequence.
    bos = family.bos
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))])
    extra = [t for t in family.special if t not in (bos, family.base_eos, "<unk>")]
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=family.base_eos,
                                  unk_token="<unk>" if "<unk>" in family.special else None,
                                  additional_special_tokens=extra or None, model_max_length=131072,
                                  clean_up_tokenization_spaces=True)
    if family.template:
        tok.chat_template = family.template
    return tok


def build_model(family: Family, tokenizer: Any, *, seed: int = 0) -> Any:
    """A 2-layer random-weight model of ``family``'s architecture for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    if family.name == "gpt2":
        # GPT-2 ships dropout 0.1 everywhere; off here, where a test overfits a dozen tickets in 40 steps.
        return GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=CONTEXT,
                                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids))
    shape = {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": CONTEXT,
             "tie_word_embeddings": True, **ids}  # tied like Llama 3.2 1B and Qwen2.5 0.5B
    if family.name == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**shape))
    return LlamaForCausalLM(LlamaConfig(**shape))


def save_checkpoint(name: str, texts: Sequence[str], out: Path) -> Path:
    """Build ``name``'s tokenizer and model and save them with save_pretrained into ``out``."""
    family = FAMILIES[name]
    tokenizer = build_tokenizer(family, texts)
    build_model(family, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
