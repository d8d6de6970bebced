"""`appkit train-writer` and `appkit write` through the real CLI: output, storage, --out, bad input."""

from __future__ import annotations

import pytest

from appkit.cli import main
from tests.apps.writer_fixtures import MODEL, train_args, writer_corpus, writer_home, writer_settings  # noqa: F401


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in err and err.startswith("error: ")
    for needle in needles:
        assert needle in err, err


def documents(settings) -> list:
    from appkit.store import open_store

    with open_store(settings) as store:
        return store.list_documents(app="writer")


def test_train_writer_registered_the_active_writer(writer_home):
    from appkit.config import load_settings
    from appkit.store import open_store

    settings = load_settings(home=writer_home, database_url=f"sqlite:///{writer_home / 'appkit.db'}")
    with open_store(settings) as store:
        active = store.active_model("writer")
        runs = store.list_runs("writer")
    assert active.name == MODEL and runs[0].status == "finished"
    assert active.data["held_out"] == 3 and active.data["summary"] == "26 articles (posts)"


def test_write_prints_markdown_and_the_word_count_stores_it_and_writes_out(capsys, writer_settings, tmp_path):
    (tmp_path / "out").mkdir()
    out_file = tmp_path / "out" / "draft.md"
    out_file.write_text("an older draft", encoding="utf-8")
    code, out, err = run(capsys, "write", "--title", "Why we ship weekly", "--words", "80", "--tone", "plain",
                         "--tag", "agile", "--seed", "7", "--out", str(out_file))
    assert code == 0, err
    assert out.startswith("# Why we ship weekly\n\n")
    assert "words (target 80, " in err and f"model {MODEL}" in err and "document 1" in err
    assert out_file.read_text(encoding="utf-8") == out
    assert [p.name for p in out_file.parent.iterdir()] == ["draft.md"]  # no temporary file left behind
    [doc] = documents(writer_settings)
    assert doc.content == out.strip() and doc.brief["tags"] == ["agile"] and doc.brief["tone"] == "plain"
    assert doc.template_name == "writer/brief.j2" and doc.model_name == MODEL


def test_variants_are_printed_and_written_together(capsys, writer_settings, tmp_path):
    out_file = tmp_path / "drafts.md"
    code, out, err = run(capsys, "write", "--title", "Open data", "--format", "social", "--words", "40",
                         "--variants", "2", "--out", str(out_file))
    assert code == 0, err
    assert out.count("# Open data") == 2 and "variant 2/2" in err
    assert out_file.read_text(encoding="utf-8").count("\n---\n") == 1
    assert len(documents(writer_settings)) == 2
    plain = tmp_path / "plain.md"
    plain.write_text("x", encoding="utf-8")
    assert out_file.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, "the usual permissions, not private"


def test_rewriting_an_out_file_keeps_its_permissions(tmp_path):
    from appkit.files import write_text_atomic

    target = tmp_path / "draft.md"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new" and target.stat().st_mode & 0o777 == 0o640


def test_an_interrupted_write_leaves_the_old_out_file_whole(tmp_path, monkeypatch):
    import os

    from appkit.files import write_text_atomic

    target = tmp_path / "draft.md"
    target.write_text("old", encoding="utf-8")

    def crash(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_text_atomic(target, "new " * 1000)
    assert target.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["draft.md"]


@pytest.mark.parametrize("args, needles", [
    (["--words", "0"], ["--words 0", "between 20 and 2000"]),
    (["--words", "-3"], ["--words -3"]),
    (["--words", "50000"], ["--words 50000"]),
    (["--format", "poem"], ["unknown format 'poem'", "blog, social, email, product"]),
    (["--variants", "0"], ["--variants must be between 1 and 8"]),
])
def test_bad_write_flags_are_clean_errors_and_nothing_is_written(capsys, writer_settings, tmp_path, args, needles):
    out_file = tmp_path / "draft.md"
    code, out, err = run(capsys, "write", "--title", "Hello", "--out", str(out_file), *args)
    assert_clean_error(code, err, *needles)
    assert not out_file.exists() and documents(writer_settings) == [] and out == ""


def test_out_in_a_missing_folder_is_refused_before_writing(capsys, writer_settings, tmp_path):
    code, _, err = run(capsys, "write", "--title", "Hello", "--out", str(tmp_path / "nope" / "d.md"))
    assert_clean_error(code, err, "does not exist")
    assert documents(writer_settings) == []


def test_write_without_a_trained_writer_names_the_command_that_trains_one(capsys, appkit_home):
    code, _, err = run(capsys, "write", "--title", "Hello")
    assert_clean_error(code, err, "no writer model is trained yet", "appkit writer train --corpus posts/")


def test_train_writer_on_an_empty_folder_is_a_clean_error(capsys, appkit_home, tmp_path):
    empty = tmp_path / "posts"
    empty.mkdir()
    code, _, err = run(capsys, "train-writer", "--corpus", str(empty), "--preset", "nano", "--max-steps", "1")
    assert_clean_error(code, err, "nothing to learn from")
    assert not (appkit_home / "models").exists()


def test_train_writer_on_a_folder_without_usable_articles_is_a_clean_error(capsys, appkit_home, tmp_path):
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "a.md").write_text("---\ntitle: Only a title\n---\n\nHi there.\n", encoding="utf-8")
    (posts / "b.txt").write_text("Two words.", encoding="utf-8")
    code, _, err = run(capsys, "train-writer", "--corpus", str(posts), "--preset", "nano", "--max-steps", "1")
    assert_clean_error(code, err, "no usable article")
    assert not (appkit_home / "models").exists()


def test_train_writer_with_an_unknown_base_is_a_clean_error(capsys, appkit_home, writer_corpus):
    code, _, err = run(capsys, "train-writer", "--corpus", str(writer_corpus), "--base", "no-such-base",
                       "--max-steps", "1")
    assert_clean_error(code, err, "--base no-such-base", "appkit pretrain")


@pytest.mark.slow
def test_train_writer_from_a_pretrained_base(capsys, tmp_path, writer_corpus):
    home = tmp_path / "home"
    db = f"sqlite:///{home / 'appkit.db'}"
    code, _, err = run(capsys, "--home", str(home), "--database-url", db, "--device", "cpu", "pretrain", "--corpus",
                       str(writer_corpus), "--preset", "nano", "--max-steps", "20", "--name", "brand-base")
    assert code == 0, err
    code, out, err = run(capsys, *train_args(home, writer_corpus, "--base", "brand-base", "--name", "w-lora"))
    assert code == 0, err
    assert "model: lora" in out
    code, out, err = run(capsys, "--home", str(home), "--database-url", db, "--device", "cpu",
                         "write", "--title", "From a base", "--words", "40")
    assert code == 0 and out.startswith("# From a base") and "model w-lora" in err


def test_eval_reports_voice_perplexities_and_length_control(capsys, writer_settings, writer_corpus, tmp_path):
    import json

    other = tmp_path / "play.txt"
    other.write_text("\n\n".join(f"KING {i}:\nO thou knave, the moon doth weep upon thy crown." for i in range(40)),
                     encoding="utf-8")
    report = tmp_path / "eval.json"
    code, out, err = run(capsys, "eval", "--app", "writer", "--data", str(writer_corpus), "--other", str(other),
                         "--limit", "8", "--json", str(report))
    assert code == 0, err
    assert "writer on held-out posts vs. play.txt" in out and "brand" in out
    [row] = json.loads(report.read_text())["rows"]
    assert row["system"] == MODEL and row["briefs"] == 8 and row["within_25"] == 1.0
    assert row["brand_perplexity"] < row["other_perplexity"]
