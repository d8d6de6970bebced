"""Fine-tuning a local Hugging Face checkpoint with LoRA (a tiny checkpoint the test saves itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def foreign_checkpoint(tmp_path_factory, toy_history) -> Path:
    """A random Llama + BPE tokenizer with no chat template, as a user's own base model might be."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from appkit.data import read_history

    texts = [t.text for c in read_history(toy_history) for t in c.turns]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=256))
    out = tmp_path_factory.mktemp("base")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


# Loading the adapter back with peft (as a user of the saved folder would) trips peft's own call
# of a name transformers 5 deprecates; appkit's runs filter it where appkit calls peft.
@pytest.mark.e2e  # a fresh appkit process: kept out of the quick tier, as the other process tests
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_lora_fine_tune_of_a_local_checkpoint(foreign_checkpoint, toy_history, appkit_home):
    done = subprocess.run(
        [sys.executable, "-m", "appkit", "train-support", "--history", str(toy_history), "--base", str(foreign_checkpoint),
         "--max-steps", "40", "--batch-size", "4", "--learning-rate", "0.01", "--name", "lora"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Loading weights" not in done.stderr, "appkit shows its own progress, not transformers' bars"
    assert "Warning" not in done.stderr, done.stderr
    out = appkit_home / "models" / "lora"
    meta = json.loads((out / "appkit.json").read_text())
    assert meta["preset"] == "lora" and meta["base"] == str(foreign_checkpoint)
    assert (out / "adapter" / "adapter_config.json").exists()  # the adapter alone, for shared bases
    history = [json.loads(line) for line in (appkit_home / "runs" / "lora" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in history if "loss" in r]
    assert losses[-1] < losses[0] * 0.9, "the adapter learns"

    # The merged model is a plain HF model with appkit's chat template added to its tokenizer.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    enc = tok.apply_chat_template([{"role": "user", "content": "where is my order"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    generated = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > enc["input_ids"].shape[1]

    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(foreign_checkpoint)
    base.resize_token_embeddings(len(tok))
    assert PeftModel.from_pretrained(base, out / "adapter") is not None


def test_base_that_is_not_a_checkpoint_is_a_clear_error(toy_history, appkit_home, tmp_path):
    done = subprocess.run([sys.executable, "-m", "appkit", "train-support", "--history", str(toy_history),
                           "--base", str(tmp_path), "--max-steps", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "no config.json" in done.stderr and "Traceback" not in done.stderr
