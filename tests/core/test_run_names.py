"""Model names are folder names: checked, never a path, never another app's, replaced only on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError
from appkit.store import open_store
from tests.test_cli import run

BAD_NAMES = ["..", ".", "/tmp/elsewhere", "a/b", "..\\x", "", "-rf", "two words", "x" * 101]


def _home_with_things(home: Path) -> list[Path]:
    """A home with a model, a run and a database, as a user's would be; returns every path in it."""
    (home / "models" / "kept").mkdir(parents=True)
    (home / "models" / "kept" / "config.json").write_text("{}")
    (home / "runs" / "kept").mkdir(parents=True)
    with open_store(load_settings()) as store:
        store.create_conversation("support", title="a customer's conversation")
    return sorted(home.rglob("*"))


def _nano(*extra: str) -> list[str]:
    return ["--preset", "nano", "--max-steps", "3", "--batch-size", "4", *extra]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_one_plain_folder_name_is_refused_and_nothing_changes(capsys, appkit_home, toy_history,
                                                                                  name):
    before = _home_with_things(appkit_home)
    code, _, err = run(capsys, "train-support", "--history", str(toy_history), *_nano("--name", name))
    assert code == 2 and f"--name {name!r}" in err and "letters, digits" in err and "Traceback" not in err
    assert sorted(appkit_home.rglob("*")) == before


@pytest.mark.parametrize("command", [["pretrain", "--corpus", "x.txt"], ["train-writer", "--corpus", "posts"],
                                     ["sentiment", "train", "--data", "x.csv"]])
def test_every_trainer_refuses_a_path_as_a_name(capsys, appkit_home, command):
    code, _, err = run(capsys, *command, "--name", "..")
    assert code == 2 and "--name '..'" in err
    assert not appkit_home.exists()


def test_library_callers_are_checked_too(appkit_home, toy_history, tmp_path):
    from appkit.data import read_history
    from appkit.train.pipeline import ChatTrainingOptions, prepare_conversations, train_chat_model
    from apps.support.train import train_support

    with pytest.raises(ConfigError, match="a model name is"):
        train_support(toy_history, name="..", settings=load_settings(), log=lambda _: None)
    options = ChatTrainingOptions(preset="nano", max_steps=2, progress=False)
    train, val, _ = prepare_conversations(read_history(toy_history), options, log=lambda _: None)
    (tmp_path / "precious").mkdir()
    with pytest.raises(ConfigError, match="a model name is"):
        train_chat_model(train, val, name="../precious", models_dir=tmp_path / "models", runs_dir=tmp_path / "runs",
                         options=options, log=lambda _: None)
    assert (tmp_path / "precious").is_dir() and not (tmp_path / "runs").exists()


def test_the_name_of_another_apps_model_is_refused_even_with_replace(capsys, appkit_home, toy_history):
    writer_model = appkit_home / "models" / "house"
    writer_model.mkdir(parents=True)
    (writer_model / "config.json").write_text("{}")
    with open_store(load_settings()) as store:
        store.register_model("house", "writer", str(writer_model), status="active")
    for extra in ([], ["--replace"]):
        code, _, err = run(capsys, "train-support", "--history", str(toy_history), *_nano("--name", "house", *extra))
        assert code == 2 and "the writer app has a model or run of that name" in err
    assert (writer_model / "config.json").read_text() == "{}"
    with open_store(load_settings()) as store:
        assert store.get_model("house").app == "writer" and store.active_model("support") is None


def test_reusing_ones_own_name_needs_replace(capsys, appkit_home, toy_history):
    history = ["train-support", "--history", str(toy_history)]
    assert run(capsys, *history, *_nano("--name", "bot"))[0] == 0
    first = (appkit_home / "models" / "bot" / "appkit.json").read_text()
    code, _, err = run(capsys, *history, *_nano("--name", "bot"))
    assert code == 2 and "a support model of that name exists; pass --replace" in err
    assert (appkit_home / "models" / "bot" / "appkit.json").read_text() == first
    code, _, err = run(capsys, *history, *_nano("--name", "bot", "--replace", "--seed", "1"))
    assert code == 0, err
    assert (appkit_home / "models" / "bot" / "appkit.json").read_text() != first
    with open_store(load_settings()) as store:
        assert [m.name for m in store.list_models("support")] == ["bot"]


def test_a_failed_runs_folder_is_kept_until_resume_or_replace(capsys, appkit_home, toy_history):
    history = ["train-support", "--history", str(toy_history)]
    code, _, _ = run(capsys, *history, *_nano("--name", "bot", "--learning-rate", "1e30"))
    assert code == 1 and (appkit_home / "runs" / "bot").is_dir()  # diverged: the run folder stays for a look
    code, _, err = run(capsys, *history, *_nano("--name", "bot"))
    assert code == 2 and "runs/bot exists from an earlier run; pass --resume" in err
    code, _, err = run(capsys, *history, *_nano("--name", "bot", "--replace"))
    assert code == 0, err
