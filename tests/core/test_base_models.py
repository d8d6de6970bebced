"""``--base DIR --finetune lora|full`` on GPT-2, Llama and Qwen2 checkpoints, each with its own tokenizer.

The checkpoints are tiny random-weight models the tests build and save themselves
(tests/core/base_checkpoints.py); the network is closed for every test here, so a hub download
anywhere on the way fails the test.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INTENTS, write_pairs_csv
from tests.core.base_checkpoints import CONTEXT, FAMILIES, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

ROWS = [{"customer": q, "agent": answer} for questions, answer in INTENTS.values() for q in questions[:3]]
SYSTEM_WORDS = "You are the customer support assistant of our company.\nSimilar resolved cases:\nCustomer: \nAgent: "
MESSAGES = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "where is my order"},
    {"role": "assistant", "content": "It ships today."},
    {"role": "user", "content": "thanks"},
    {"role": "assistant", "content": "You're welcome."},
]



def _greedy() -> Any:
    from appkit.engine import GenerationParams

    return GenerationParams(temperature=0, repetition_penalty=1.0, max_new_tokens=40)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt (a hub download) fails: everything must come from the folder."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved checkpoint per family, its BPE vocabulary trained on the tickets' own words."""
    root = tmp_path_factory.mktemp("bases")
    # The support prompt's own words too, so a prompt with two retrieved cases is ~60 tokens, not ~120.
    texts = [text for row in ROWS for text in row.values()] + [SYSTEM_WORDS] * 20
    return {name: save_checkpoint(name, texts, root / name) for name in FAMILIES}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 tickets: four intents, three wordings each, one answer per intent."""
    return write_pairs_csv(tmp_path_factory.mktemp("history") / "tickets.csv", ROWS)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_base_keeps_its_familys_tokens_and_template_and_learns_only_the_assistants_turns(bases, name):
    from transformers import AutoTokenizer

    from appkit.model.build import load_base
    from appkit.tokenizer import CHAT_TEMPLATE, chat_control_ids, encode_conversation, generation_prompt_ids

    family = FAMILIES[name]
    original = AutoTokenizer.from_pretrained(bases[name])
    model, tok = load_base(bases[name])

    assert tok.bos_token == family.bos and tok.pad_token == family.pad
    assert tok.eos_token == family.end_of_turn, "eos closes a turn, as the family's instruct release has it"
    base_eos = original.convert_tokens_to_ids(family.base_eos)
    stops = model.generation_config.eos_token_id  # plain generate() stops where the engine does
    assert stops[:2] == [tok.eos_token_id, base_eos] and set(stops) == {base_eos, *chat_control_ids(tok)}
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    if family.template:
        assert tok.chat_template == family.template and len(tok) == len(original), "the family's own, untouched"
    else:
        assert tok.chat_template.endswith(CHAT_TEMPLATE) and len(tok) == len(original) + 4

    ids, mask = encode_conversation(tok, MESSAGES)
    assert ids == tok.apply_chat_template(MESSAGES, tokenize=True, return_dict=False), "the ids the template gives"
    assert (ids[0] == tok.bos_token_id) == family.adds_bos
    learned = tok.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=False)
    assert learned == f"It ships today.{family.end_of_turn}You're welcome.{family.end_of_turn}"

    prompt = generation_prompt_ids(tok, MESSAGES[:2])
    assert tok.decode(prompt, skip_special_tokens=False).endswith(family.assistant_prompt)
    assert ids[: len(prompt)] == prompt, "training sees the prompt generation will see"


def test_a_bfloat16_base_with_spare_embedding_rows_loads_in_float32_and_keeps_its_rows(tmp_path):
    import torch

    from appkit.model.build import load_base
    from tests.core.base_checkpoints import build_model, build_tokenizer

    family = FAMILIES["gpt2"]
    tok = build_tokenizer(family, [text for row in ROWS for text in row.values()])
    model = build_model(family, tok)
    rows = (len(tok) + 63) // 64 * 64  # a vocabulary rounded up, as many checkpoints keep it
    model.resize_token_embeddings(rows)
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)

    loaded, chat_tok = load_base(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters()), "AdamW steps on bfloat16 weights round away"
    assert loaded.get_input_embeddings().weight.shape[0] == rows, "new tokens take spare rows; nothing shrinks"
    assert len(chat_tok) == len(tok) + 4 <= rows


def test_lora_on_gpt2s_conv1d_layers_merges_into_weights_that_answer_the_same(bases):
    import warnings

    import torch

    from appkit.model.build import add_lora, load_base
    from appkit.tokenizer import chat_control_ids, encode_conversation

    model, tok = load_base(bases["gpt2"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lora = add_lora(model, rank=4, train_token_ids=chat_control_ids(tok))
    assert not [w for w in caught if "fan_in_fan_out" in str(w.message)], "GPT-2 stores its projections (in, out)"
    adapted_layers = {name.rsplit(".", 1)[-1] for name in lora.peft_config["default"].target_modules}
    assert {"c_attn", "c_proj", "c_fc"} <= adapted_layers
    ids = torch.tensor([encode_conversation(tok, MESSAGES)[0]])
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        lora(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    lora.eval()
    with torch.no_grad():
        adapted = lora(input_ids=ids).logits
        merged = lora.merge_and_unload()(input_ids=ids).logits  # what save_model writes
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_lora_trains_the_turn_tokens_output_rows_when_the_output_layer_is_its_own_matrix():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from appkit.model.build import add_lora

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, tie_word_embeddings=False))  # as Llama 3 8B
    head = base.lm_head.weight.detach().clone()
    model = add_lora(base, rank=4, train_token_ids=[5])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.tensor([[1, 2, 3, 5, 1, 2, 3, 5]])
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    merged = model.merge_and_unload()
    assert not torch.allclose(merged.lm_head.weight[5], head[5]), "the model learns to say the token, not only read it"
    assert torch.equal(merged.lm_head.weight[7], head[7])


def _train_support(history: Path, base: Path, home: Path, finetune: str, steps: int, lr: float) -> Any:
    import appkit
    from appkit.config import load_settings

    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    return appkit.train_support(history, name=f"{base.name}-{finetune}", settings=settings, base=str(base),
                                finetune=finetune, max_steps=steps, batch_size=4, learning_rate=lr, progress=False)


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _end_logprob(model: Any, tok: Any, conversation: list[dict[str, str]]) -> float:
    """log P(end-of-turn token | the conversation up to the end of its last answer)."""
    import torch

    from appkit.tokenizer import encode_conversation

    ids, _ = encode_conversation(tok, conversation)
    end = ids.index(tok.eos_token_id, len(ids) - 3)  # the answer's end-of-turn (ChatML writes a newline after it)
    with torch.no_grad():
        logits = model(torch.tensor([ids[:end]])).logits[0, -1]
    return float(torch.log_softmax(logits.float(), -1)[tok.eos_token_id])


def _hf_reply(model_dir: Path, messages: list[dict[str, str]]) -> tuple[list[int], str, Any]:
    """The reply plain transformers writes (greedy): its new token ids, its text, the tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=40, do_sample=False)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    return new, tok.decode(new, skip_special_tokens=True), tok


@pytest.mark.parametrize("name", [pytest.param("gpt2", marks=pytest.mark.slow), "llama3", "qwen2"])
def test_full_fine_tune_replies_and_stops_at_the_familys_end_of_turn(bases, history, tmp_path, name):
    from appkit.engine import Engine

    family = FAMILIES[name]
    trained = _train_support(history, bases[name], tmp_path / "home", "full", steps=40, lr=1e-2)
    losses = _losses(trained.run_dir)
    assert losses[-1] < losses[0] / 3, losses
    meta = json.loads((trained.path / "appkit.json").read_text())
    assert meta["finetune"] == "full" and meta["base"] == str(bases[name])

    conv = trained.train_conversations[0].as_messages()  # system prompt with retrieved cases, question, answer
    prompt, answer = conv[:-1], conv[-1]["content"]
    new, text, tok = _hf_reply(trained.path, prompt)
    assert tok.eos_token == family.end_of_turn and tok.pad_token == family.pad and tok.bos_token == family.bos
    assert new[-1] == tok.convert_tokens_to_ids(family.end_of_turn), tok.convert_ids_to_tokens(new)
    assert text.strip() == answer

    engine = Engine.load(trained.path)
    try:
        reply = engine.reply(prompt, _greedy())
    finally:
        engine.close()
    assert reply.text == answer and reply.stats.finish_reason == "end_of_turn"
    assert reply.stats.completion_tokens == len(new) - 1, "the engine stops on the token transformers stops on"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "qwen2", "llama3"])
def test_lora_trains_the_turn_tokens_and_saves_a_merged_model_and_its_adapter(bases, history, tmp_path, name):
    import torch
    from safetensors.torch import load_file

    from appkit.engine import Engine
    from appkit.model.build import load_base

    family = FAMILIES[name]
    trained = _train_support(history, bases[name], tmp_path / "home", "lora", steps=30, lr=2e-2)
    losses = _losses(trained.run_dir)
    assert losses[-1] < losses[0] * 0.95, losses
    assert (trained.path / "adapter" / "adapter_config.json").is_file()

    # It learned to end the turn: the end-of-turn token's row is trained (new for GPT-2, the
    # template's own for the others), ordinary rows stay the base's.
    base_model, tok = load_base(bases[name])
    conv = trained.train_conversations[0].as_messages()
    merged = load_file(trained.path / "model.safetensors")
    rows = next(v for k, v in merged.items() if k.endswith(("embed_tokens.weight", "wte.weight")))
    other = tok.encode("order", add_special_tokens=False)[0]
    assert torch.equal(rows[other], base_model.get_input_embeddings().weight[other]), "ordinary rows stay the base's"
    from transformers import AutoModelForCausalLM

    before = _end_logprob(base_model, tok, conv)
    after = _end_logprob(AutoModelForCausalLM.from_pretrained(trained.path, local_files_only=True), tok, conv)
    assert after > before + 3, f"log P(end of turn | answer) {before:.2f} -> {after:.2f}"

    prompt = trained.train_conversations[0].as_messages()[:-1]
    new, _, hf_tok = _hf_reply(trained.path, prompt)
    assert hf_tok.eos_token == family.end_of_turn
    engine = Engine.load(trained.path)
    try:
        reply = engine.reply(prompt, _greedy())
    finally:
        engine.close()
    stopped = new[-1] in engine.model.generation_config.eos_token_id
    assert reply.stats.completion_tokens == len(new) - stopped, "greedy: the engine writes what transformers writes"


@pytest.mark.parametrize("name", ["qwen2", pytest.param("gpt2", marks=pytest.mark.slow),
                                  pytest.param("llama3", marks=pytest.mark.slow)])
def test_the_writer_trains_on_a_base_and_ends_articles_with_the_familys_end_of_turn(bases, tmp_path, name):
    import appkit
    from appkit.config import load_settings
    from appkit.data import read_corpus
    from appkit.cli import main
    from appkit.prompts import prompts_for
    from apps.writer.articles import articles_from
    from apps.writer.segments import encode_articles
    from tests.apps.writer_corpus import write_corpus

    family = FAMILIES[name]
    home = tmp_path / "home"
    corpus = write_corpus(tmp_path / "posts")
    assert main(["--home", str(home), "--device", "cpu", "--database-url", f"sqlite:///{home / 'appkit.db'}",
                 "train-writer", "--corpus", str(corpus), "--base", str(bases[name]), "--finetune", "lora",
                 "--max-steps", "10", "--batch-size", "4", "--learning-rate", "2e-2", "--name", "w"]) == 0
    path = home / "models" / "w"
    meta = json.loads((path / "appkit.json").read_text())
    assert meta["app"] == "writer" and meta["base"] == str(bases[name]) and meta["writer"]["tokens_per_word"] > 0

    from transformers import AutoTokenizer

    settings = load_settings(home=home, device="cpu", database_url=f"sqlite:///{home / 'appkit.db'}")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert tok.eos_token == family.end_of_turn
    # What the writer trained on: the brief in the family's template, the article, its end of turn.
    articles, _ = articles_from(read_corpus(corpus)[0])
    examples = encode_articles(articles[:4], tok, prompts_for(settings), CONTEXT)
    assert family.assistant_prompt in tok.decode(examples[0].ids, skip_special_tokens=False)
    assert sum(e.ids[-1] == tok.convert_tokens_to_ids(family.end_of_turn) for e in examples) == 4, "each last part"

    writer = appkit.load_app("writer", settings=settings, policy=None)
    try:
        draft = writer.write("Agile at our studio", words=30, seed=0, store=False)
    finally:
        writer.close()
    assert draft.text.startswith("# Agile at our studio") and draft.tokens > 0
