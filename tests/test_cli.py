"""The `appkit` command as a user runs it: help, training, asking, listing, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appkit.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_imports_no_torch():
    # What keeps --help instant: none of the heavy libraries is imported. The time itself is a
    # target in bench/cli_startup.py, not a test (a bound here flakes on a busy machine).
    code = ("import sys; from appkit.cli import main; main(['--help']); "
            "sys.stderr.write(str(sorted(m for m in ('torch', 'transformers', 'sqlalchemy', 'textual') "
            "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # One group per app; the old top-level names are aliases, kept out of --help.
    assert all(name in done.stdout for name in ("support", "writer", "sentiment", "serve", "keys"))
    assert "train-support" not in done.stdout and "ask" not in done.stdout
    assert done.stderr == "[]"


def test_train_list_ask_and_continue(capsys, appkit_home, toy_history):
    code, out, err = run(capsys, "train-support", "--history", str(toy_history), "--preset", "nano",
                         "--max-steps", "60", "--batch-size", "4", "--learning-rate", "0.004", "--name", "cli-bot")
    assert code == 0, err
    assert "curated 160" in out and "validation loss" in out and "active support model" in out
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "cli-bot" in out and "active" in out and "nano" in out and "ppl " in out
    code, out, err = run(capsys, "ask", "--temperature", "0", "where is my order?")
    assert code == 0, err
    assert out.strip() and "conversation 1" in err
    code, out, err = run(capsys, "ask", "--conversation", "1", "--temperature", "0", "thanks")
    assert code == 0, err
    code, out, _ = run(capsys, "conversations", "show", "1")
    assert out.count("user") >= 2


def test_ask_without_a_model_says_how_to_train_one(capsys, appkit_home):
    code, out, err = run(capsys, "ask", "hello")
    assert code == 1
    assert "appkit support train --history" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"foo,bar\n1,2\n", "columns"),
        (b"customer,agent\n\xff\xfe\xfa broken,bytes\n", "decode"),
    ],
    ids=["empty-file", "missing-columns", "undecodable"],
)
def test_bad_histories_fail_cleanly_and_write_nothing(capsys, appkit_home, tmp_path, content, expected):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    code, out, err = run(capsys, "train-support", "--history", str(bad), "--preset", "nano", "--max-steps", "2")
    assert code != 0
    assert str(bad) in err and expected in err.lower()
    assert "Traceback" not in err
    assert not (appkit_home / "models").exists() or not any((appkit_home / "models").iterdir())


def test_missing_history_and_bad_flags(capsys, appkit_home, tmp_path, toy_history):
    code, _, err = run(capsys, "train-support", "--history", str(tmp_path / "nope.csv"))
    assert code != 0 and "nope.csv" in err
    code, _, err = run(capsys, "train-support", "--history", str(toy_history), "--preset", "huge")
    assert code != 0 and "huge" in err and "tiny" in err
    code, _, err = run(capsys, "train-support", "--history", str(toy_history), "--max-minutes", "0")
    assert code != 0 and "--max-minutes" in err


def test_unreachable_database_is_a_clear_error(capsys, appkit_home, monkeypatch):
    monkeypatch.setenv("APPKIT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = run(capsys, "models", "list")
    assert code != 0 and "127.0.0.1:1" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["sentiment", "train", "--no-such-flag"], ["no-such-command"],
                                  ["sentiment", "train", "--data", "x.csv", "--epochs", "many"]])
def test_a_mistyped_command_line_prints_usage_not_a_traceback(args):
    # As the installed command runs: the typer release in use decides which exceptions arrive.
    done = subprocess.run([sys.executable, "-m", "appkit", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Usage: " in done.stderr and "Error:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("typed", "command"), [
    (["support", "train"], "support train"), (["support", "ask"], "support ask"), (["support", "eval"], "support eval"),
    (["support", "chat"], "support chat"), (["support", "demo"], "support demo"),
    (["writer", "train"], "writer train"), (["writer", "write"], "writer write"), (["writer", "eval"], "writer eval"),
    (["sentiment", "train"], "sentiment train"), (["sentiment", "analyze"], "sentiment analyze"),
    (["sentiment", "eval"], "sentiment eval"), (["writer", "chat"], "writer chat"),
    # What people typed before: each still runs the same command.
    (["train-support"], "support train"), (["ask"], "support ask"), (["demo"], "support demo"), (["chat"], "support chat"),
    (["eval"], "support eval"), (["eval", "--app", "writer"], "writer eval"), (["eval", "--app=sentiment"], "sentiment eval"),
    (["chat", "--app", "sentiment"], "sentiment chat"), (["train-writer"], "writer train"), (["write"], "writer write"),
])
def test_one_command_shape_and_the_old_names(capsys, typed, command):
    code, out, err = run(capsys, *typed, "--help")
    assert code == 0, err
    assert f"Usage: appkit {command} [OPTIONS]" in out


def test_an_alias_for_an_app_without_that_command_says_so(capsys, appkit_home):
    code, _, err = run(capsys, "ask", "--app", "writer", "hello")
    assert code == 2 and "`appkit ask` is `appkit support ask`, and the writer app has no ask command" in err
    code, _, err = run(capsys, "eval", "--app", "nope", "--data", "x.csv")
    assert code == 2 and "unknown app 'nope'; installed apps: sentiment, support, writer" in err
