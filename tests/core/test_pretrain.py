"""appkit pretrain: raw text -> a base model an app can start from (--base NAME)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from appkit.cli import main
from appkit.data.types import Document
from appkit.train.packing import IGNORE, encode_documents
from appkit.train.pretrain import split_long_documents

WORDS = "the team shipped a new service for the agency and people found their forms faster than before".split()


def make_corpus(folder: Path, n: int = 24, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        body = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(3))
        (folder / f"2020-01-{i + 1:02d}-post.md").write_text(f"---\ntitle: Post {i}\n---\n\n{body}\n")
    return folder


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from appkit.tokenizer import train_tokenizer

    return train_tokenizer([" ".join(WORDS)] * 20 + ["word " * 50, "short"])


def test_documents_end_with_end_of_text_are_chunked_and_fully_learned(tiny_tokenizer):
    docs = [Document("a", "word " * 50), Document("b", "short")]
    examples = encode_documents(tiny_tokenizer, docs, max_length=16)
    end = tiny_tokenizer.eos_token_id
    assert all(len(e) <= 16 for e in examples)
    assert all(IGNORE not in e.labels and e.labels == e.ids for e in examples)
    whole = tiny_tokenizer("word " * 50, add_special_tokens=False)["input_ids"] + [end]
    first_doc = [t for e in examples[:-1] for t in e.ids]
    assert first_doc == whole  # nothing lost or repeated at chunk borders
    assert examples[-1].ids[-1] == end


def test_long_documents_are_cut_at_paragraphs_with_their_own_ids():
    doc = Document("book", "\n\n".join(f"paragraph {i} " + "x" * 90 for i in range(30)))
    parts = split_long_documents([doc, Document("short", "tiny")], max_chars=1000)
    assert [p.id for p in parts[:2]] == ["book#0", "book#1"] and parts[-1].id == "short"
    assert all(len(p.text) <= 1000 for p in parts[:-1])
    assert "\n\n".join(p.text for p in parts[:-1]) == doc.text


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_pretrain_registers_a_base_that_support_training_starts_from(capsys, appkit_home, tmp_path, toy_history):
    corpus = make_corpus(tmp_path / "posts")
    code, out, err = run(capsys, "pretrain", "--corpus", str(corpus), "--preset", "nano", "--max-steps", "40",
                         "--learning-rate", "0.004", "--name", "house-base")
    assert code == 0, err
    assert "corpus: 24 documents" in out and "chunks" in out and "--base house-base" in out
    code, out, _ = run(capsys, "models", "list", "--app", "base")
    assert "house-base" in out and "24 docs" in out and "(posts)" in out

    # The base learned the corpus: its held-out perplexity is far below the vocabulary size.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = appkit_home / "models" / "house-base"
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    meta = json.loads((path / "appkit.json").read_text())
    assert meta["app"] == "base" and meta["metrics"]["val_perplexity"] < len(tok) / 4
    assert tok.chat_template is not None  # apps fine-tune it without resizing embeddings
    assert model.config.vocab_size >= len(tok)
    assert path.stat().st_mode & 0o777 == path.parent.stat().st_mode & 0o777, "not private, like any folder made here"
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    for saved_file in path.rglob("*"):  # safetensors writes its weights 0600
        if saved_file.is_file():
            assert saved_file.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, saved_file.name

    for finetune in ("full", "lora"):
        code, out, err = run(capsys, "train-support", "--history", str(toy_history), "--base", "house-base",
                             "--finetune", finetune, "--max-steps", "3", "--name", f"sup-{finetune}")
        assert code == 0, err
        assert f"model: {finetune}" in out
        saved = json.loads((appkit_home / "models" / f"sup-{finetune}" / "appkit.json").read_text())
        assert saved["base"] == str(path) and saved["finetune"] == finetune


def test_pretrain_bad_input_fails_cleanly(capsys, appkit_home, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "pretrain", "--corpus", str(tmp_path / "empty"), "--preset", "nano")
    assert code != 0 and "empty" in err and "nothing to learn from" in err and "Traceback" not in err
    code, _, err = run(capsys, "pretrain", "--corpus", str(make_corpus(tmp_path / "p", n=3)), "--base", "nope")
    assert code != 0 and "--base nope" in err
    code, out, err = run(capsys, "pretrain", "--corpus", str(make_corpus(tmp_path / "q", n=3)), "--preset", "huge")
    assert code == 2 and "unknown preset 'huge'" in err and "nano" in err
    assert "corpus:" not in out  # refused before the corpus is read
    assert not (appkit_home / "models").exists() or not any((appkit_home / "models").iterdir())
