"""`appkit report` as a user runs it: tables, PNG charts, one HTML file, JSON; clear errors and exit codes."""

from __future__ import annotations

import json
import re

import pytest

from appkit.cli import main
from tests.insights.history import conversation, days_ago


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("APPKIT_HOME", str(home))
    monkeypatch.delenv("APPKIT_DATABASE_URL", raising=False)
    return home


def fill(home) -> None:
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings()) as store:
        for i in range(6):
            conversation(store, ["where is my order", "thanks"], rating=1 if i % 2 else None, moods=[0.1, 0.6],
                         when=days_ago(i % 3))
        conversation(store, ["cancel my magazine subscription"], handoff="low_confidence", agent="Done for you.")
        conversation(store, ["agent please"], handoff="asked_for_human")
        store.record_moderation("support", "output", "lexicon", "block", {"obscene": 0.9})


def test_report_prints_tables_and_writes_charts_html_and_json(home, tmp_path, capsys):
    fill(home)
    html, charts, out = tmp_path / "out" / "report.html", tmp_path / "charts", tmp_path / "report.json"
    code = main(["report", "--since", "7d", "--html", str(html), "--charts", str(charts), "--json", str(out)])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "8 conversations; 75% resolved; 25% handed over; 100% of 3 ratings good" in printed
    for section in ("Per model", "Volume per day", "Handed over, by reason", "Customer sentiment", "Topics",
                    "Gaps"):
        assert section in printed
    assert "asked for a human" in printed and "low confidence" in printed
    assert "drift is not measured" in printed  # no trained model here to compare with

    assert {p.name for p in charts.iterdir()} >= {"volume.png", "models.png", "latency_mood.png", "topics.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in charts.iterdir())
    page = html.read_text()
    assert html.stat().st_mode & 0o077 == 0  # customers' words: readable by the owner only
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
    data = json.loads(out.read_text())
    assert data["usage"]["total"]["handed_over"] == 2 and data["usage"]["handoff_reasons"] == {
        "low_confidence": 1, "asked_for_human": 1}


def test_an_empty_store_is_exit_code_4_with_a_message(home, capsys):
    assert main(["report"]) == 4
    err = capsys.readouterr().err
    assert "holds no support conversations yet" in err and "Traceback" not in err


def test_a_quiet_period_is_exit_code_4_and_says_what_the_store_holds(home, capsys):
    fill(home)
    assert main(["report", "--since", "2030-01-01", "--until", "2030-02-01"]) == 4
    assert "no support conversation started between 2030-01-01 00:00 to 2030-02-01 00:00 UTC" in \
        capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["--since", "seven days"], "--since 'seven days' is not understood: expected a duration such as 7d"),
    (["--since", "0d"], "the duration must be more than 0"),
    (["--app", "nope"], "unknown app 'nope'"),
])
def test_bad_options_are_exit_code_2_with_the_value_named(home, capsys, args, expected):
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert expected in " ".join(err.split()) and "Traceback" not in err


def test_an_html_path_that_is_a_folder_is_refused_before_any_work(home, tmp_path, capsys):
    fill(home)
    assert main(["report", "--html", str(tmp_path)]) == 2
    assert "that is a folder" in capsys.readouterr().err
