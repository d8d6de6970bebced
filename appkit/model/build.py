"""Build a causal LM: from a preset (from scratch) or from a local Hugging Face checkpoint + LoRA."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import ModelError
from appkit.model.presets import Preset

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def build_model(preset: Preset, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0) -> PreTrainedModel:
    """A freshly initialised Llama model of ``preset``'s shape for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = (len(tokenizer) + 63) // 64 * 64  # multiple of 64: faster embedding/lm_head matmuls
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        max_position_embeddings=preset.context_length,
        rms_norm_eps=1e-5,
        # Tied input/output embeddings: at this size the embedding is a large share of the weights.
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def count_parameters(model: Any) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def load_base(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a local Hugging Face causal-LM checkpoint directory (never a hub download), ready for chat.

    The tokenizer gets the family's chat conventions (``prepare_chat_tokenizer``); tokens it
    gained take spare embedding rows, or new ones that start at the mean of the others; the generation config
    stops on the end-of-turn token, the base's own eos and the template's control tokens, so
    plain ``model.generate`` ends replies where appkit's engine does.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from appkit.model.io import quiet_transformers
    from appkit.tokenizer import chat_control_ids, prepare_chat_tokenizer

    quiet_transformers()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelError(
            f"--base {path}: not a Hugging Face checkpoint directory (no config.json there). "
            "Give a directory saved with save_pretrained, or a model name from `appkit models list`."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        # float32 whatever the checkpoint's dtype (SmolLM2, Qwen2.5 and Llama 3.2 ship bfloat16): the
        # trainer keeps float32 weights and computes in bf16 under autocast on CUDA; AdamW steps
        # applied to bfloat16 weights would mostly round away.
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"--base {path}: cannot be loaded as a causal language model ({e}).") from None
    base_stops = _ids(model.generation_config.eos_token_id) or _ids(tokenizer.eos_token_id)
    try:
        added = prepare_chat_tokenizer(tokenizer)
    except ModelError as e:
        raise ModelError(f"--base {path}: {e}") from None
    if added and len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        # Checkpoints often keep spare rows (vocabularies rounded up to a multiple of 64): new
        # tokens take those, and only a matrix too small grows (never shrinks).
        model.resize_token_embeddings(len(tokenizer))
    # And the template's role and header tokens: a reply that starts another turn has ended.
    stops = list(dict.fromkeys([tokenizer.eos_token_id, *base_stops, *chat_control_ids(tokenizer)]))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = stops if len(stops) > 1 else stops[0]
    return model, tokenizer


def _ids(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def add_lora(model: PreTrainedModel, *, rank: int = 16, alpha: int = 32, dropout: float = 0.05,
             train_token_ids: list[int] | None = None) -> PreTrainedModel:
    """Wrap ``model`` with a LoRA adapter on its attention and MLP projections (peft).

    ``train_token_ids``: tokens whose embedding rows are trained too (``chat_control_ids``):
    chat tokens added to the base's vocabulary, or the model could never learn to say
    end-of-turn, and a template's own tokens, which a base may ship untrained.
    """
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [n for n in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj") if n in names]
    if not targets:
        targets = "all-linear"  # other architectures (GPT-2's c_attn, c_proj, c_fc): let peft find the layers
    # GPT-2 keeps its projections as Conv1D, weights stored (in, out): peft must know, or it warns and guesses.
    conv1d = any(isinstance(m, Conv1D) for m in model.modules())
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM",
                        fan_in_fan_out=conv1d, trainable_token_indices=_token_rows(model, train_token_ids or []))
    with warnings.catch_warnings():
        # peft 0.21 asks transformers 5 for `is_gradient_checkpointing`, which warns that the name
        # goes in v6: a note for peft's authors that every LoRA run would otherwise print.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def _token_rows(model: PreTrainedModel, token_ids: list[int]) -> dict[str, list[int]] | None:
    """peft's ``trainable_token_indices``: the rows of the input embedding, and of the output layer
    when it is not the same matrix (Llama 3 8B, TinyLlama): a row of the input alone would let the
    model read end-of-turn but never learn to say it."""
    if not token_ids:
        return None
    names = {id(m): n.rsplit(".", 1)[-1] for n, m in model.named_modules()}
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    rows = {names[id(inputs)]: list(token_ids)}
    if outputs is not None and outputs.weight is not inputs.weight:
        rows[names[id(outputs)]] = list(token_ids)
    return rows
