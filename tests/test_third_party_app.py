"""A user's own app, installed through the ``appkit.apps`` entry point, gets what the first-party apps get.

The app is a real distribution on sys.path (a package and its ``.dist-info`` with
``entry_points.txt``, what ``pip install`` leaves behind), so appkit finds it the way it finds
apps/support: through importlib.metadata. It then has a command group in ``appkit --help``, its
own commands and alias, a typed ``[notes]`` table in appkit.toml, and a tab in the terminal UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

NOTES_APP = '''
"""Acme's notes: a third-party appkit app."""

from __future__ import annotations

from dataclasses import dataclass

import typer


@dataclass(frozen=True)
class NotesSettings:
    greeting: str = "hello"
    shout: bool = False


notes_cli = typer.Typer(no_args_is_help=True)


@notes_cli.command("train")
def train_command(data: str = typer.Option(..., "--data")) -> None:
    """Learn the notes in DATA."""
    typer.echo(f"learnt {len(open(data).read().split())} words")


@notes_cli.command("eval")
def eval_command() -> None:
    """Nothing to score yet."""


@notes_cli.command("hello")
def hello_command(ctx: typer.Context, name: str) -> None:
    """Greet NAME the way appkit.toml [notes] says."""
    from appkit.config import settings_from

    config = settings_from(ctx).app("notes")
    text = f"{config.greeting}, {name}"
    typer.echo(text.upper() if config.shout else text)


class NotesApp:
    name = "notes"
    title = "Notes"
    description = "Acme's notes: a third-party app."
    train_hint = "appkit notes train --data notes.txt"
    settings_type = NotesSettings
    aliases = {"take-note": "hello"}

    def commands(self):
        return notes_cli

    def train(self, data, *, settings, name=None, **options):
        return {"words": len(open(data).read().split())}

    def evaluate(self, *, data, models, settings, progress=None, **options):
        from appkit.eval import EvalTable

        return EvalTable("notes", ["model"], [[str(m)] for m in models])

    def open(self, *, model=None, settings=None, **options):
        return {"model": model}

    def pane(self, *, settings, model=None, opener=None, id=None, **options):
        from textual.widgets import Static

        from appkit.tui.widgets.status import StatusInfo

        class NotesPane(Static):
            app_name = "notes"
            status = StatusInfo("notes", "ready", model="notes-1")

            def activate(self):
                pass

            def focus_default(self):
                pass

            def close(self):
                pass

        return NotesPane(f"Acme notes say {settings.app('notes').greeting}", id=id)


APP = NotesApp()


class Broken:
    name = "broken"
    description = "declares too little"


BROKEN = Broken()
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding the installed app: its package and its dist-info, as pip leaves them."""
    root = tmp_path / "site"
    (root / "acme_notes").mkdir(parents=True)
    (root / "acme_notes" / "__init__.py").write_text(textwrap.dedent(NOTES_APP), encoding="utf-8")
    info = root / "acme_notes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-notes\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[appkit.apps]\nnotes = acme_notes:APP\nbroken = acme_notes:BROKEN\n",
                                           encoding="utf-8")
    return root


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app installed in this process (sys.path), the registry read afresh before and after."""
    from appkit.apps import available_apps

    monkeypatch.syspath_prepend(str(site))
    available_apps.cache_clear()
    yield site
    monkeypatch.undo()
    available_apps.cache_clear()
    sys.modules.pop("acme_notes", None)


def appkit(site: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "APPKIT_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "appkit", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_app_is_in_appkit_help_with_its_own_commands_and_settings(site: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    help_ = appkit(site, home, "--help")
    assert help_.returncode == 0, help_.stderr
    assert "notes" in help_.stdout and "Acme's notes: a third-party app." in help_.stdout
    # An app that does not keep the contract is left out, saying what it lacks.
    assert "broken" not in help_.stdout
    assert "'broken' (acme_notes:BROKEN) is not loaded: does not declare title, train_hint" in help_.stderr

    group = appkit(site, home, "notes", "--help")
    assert all(command in group.stdout for command in ("train", "eval", "hello", "chat"))  # chat: appkit's own

    (home / "appkit.toml").write_text('[notes]\ngreeting = "ahoy"\nshout = true\n', encoding="utf-8")
    hello = appkit(site, home, "notes", "hello", "Ada")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "AHOY, ADA"
    assert appkit(site, home, "take-note", "Ada").stdout.strip() == "AHOY, ADA"  # the app's alias

    (home / "appkit.toml").write_text('[notes]\ngreting = "ahoy"\n', encoding="utf-8")
    bad = appkit(site, home, "notes", "hello", "Ada")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert f"{home / 'appkit.toml'}: [notes] unknown key 'greting' (did you mean greeting?)" in bad.stderr


def test_the_app_trains_and_evaluates_through_the_registry(installed: Path, tmp_path: Path) -> None:
    from appkit.apps import get_app
    from appkit.config import Settings

    notes = tmp_path / "notes.txt"
    notes.write_text("buy milk\ncall Ada\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="'broken' .* is not loaded"):
        app = get_app("notes")
    assert app.train(notes, settings=Settings(home=tmp_path)) == {"words": 4}
    table = app.evaluate(data=notes, models=["a", None], settings=Settings(home=tmp_path))
    assert table.rows == [["a"], ["None"]]


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:appkit app 'broken'")
async def test_the_app_has_a_tab_in_the_terminal_ui(installed: Path, appkit_home: Path) -> None:
    from appkit.config import load_settings
    from appkit.tui.app import ChatApp

    appkit_home.mkdir(parents=True)
    (appkit_home / "appkit.toml").write_text('[notes]\ngreeting = "ahoy"\n', encoding="utf-8")
    app = ChatApp(load_settings(), app="support")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tabs = [str(tab.label) for tab in app.query("Tab")]
        assert tabs == ["Notes F2", "Sentiment F3", "Support F4", "Writer F6", "Insights F7"]
        await pilot.press("f2")
        await pilot.pause()
        assert app.query_one("#apps").active == "notes"
        assert "Acme notes say ahoy" in str(app.query_one("#notes-pane").render())
        assert app.query_one("#status").render().plain.startswith(" notes ")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_first_party_apps_keep_the_same_contract() -> None:
    """support, writer and sentiment register through the entry point a user's app uses, with every part."""
    from importlib.metadata import entry_points

    from appkit.apps import GROUP, available_apps, contract_problem
    from appkit.cli import _command_names

    assert {ep.value for ep in entry_points(group=GROUP)} >= {"apps.support:APP", "apps.writer:APP",
                                                              "apps.sentiment:APP"}
    for name, app in available_apps().items():
        assert contract_problem(app) is None, name
        assert {"train", "eval"} <= _command_names(app.commands()), name
        assert app.train_hint.startswith(f"appkit {name} train"), name


def test_appkit_itself_names_no_app() -> None:
    """The direction of imports: apps -> appkit, never back; nothing in appkit/ imports apps/."""
    root = Path(__file__).resolve().parents[1] / "appkit"
    offenders = [str(p.relative_to(root.parent)) for p in root.rglob("*.py")
                 if any(line.lstrip().startswith(("from apps", "import apps")) for line in p.read_text().splitlines())]
    assert offenders == []
