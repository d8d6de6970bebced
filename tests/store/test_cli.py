"""`appkit db ...` and `appkit conversations ...` through a tiny root CLI, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from appkit.config import Settings
from appkit.errors import AppkitError
from appkit.store import current, head, open_store, upgrade
from appkit.store.cli import conversations_app, db_app


class _CatchingGroup(TyperGroup):
    """What the real root CLI does: print an AppkitError's message, exit with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AppkitError as e:
            click.echo(str(e), err=True)
            ctx.exit(e.exit_code)


root = typer.Typer(cls=_CatchingGroup)
root.add_typer(db_app, name="db")
root.add_typer(conversations_app, name="conversations")


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the CLI against ``db_url`` (through APPKIT_DATABASE_URL, as a user would)."""
    monkeypatch.chdir(tmp_path)  # no stray appkit.toml
    monkeypatch.setenv("APPKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPKIT_DATABASE_URL", db_url)

    def run(*args: str, obj: Any = None) -> Any:
        return CliRunner().invoke(root, list(args), obj=obj)

    return run


def test_db_upgrade_current_downgrade(cli: Any, db_url: str) -> None:
    result = cli("db", "current")
    assert result.exit_code == 0, result.output
    assert "current:  none (empty)" in result.output and f"head:     {head()}" in result.output
    assert "behind" in result.output

    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"upgraded from empty to {head()}" in result.output
    assert "already at revision" in cli("db", "upgrade", "--revision", "head").output
    assert "up to date" in cli("db", "current").output

    assert cli("db", "downgrade", "base").exit_code == 1  # asks first; no input means no
    assert current(db_url) == head()
    result = cli("db", "downgrade", "base", "--yes")
    assert result.exit_code == 0, result.output
    assert current(db_url) is None

    result = cli("db", "upgrade", "--revision", "nonexistent")
    assert result.exit_code == 1
    assert "nonexistent" in result.output


def test_db_current_masks_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APPKIT_DATABASE_URL", "postgresql://bob:hunter2@127.0.0.1:1/appkit")
    result = CliRunner().invoke(root, ["db", "current"])
    assert result.exit_code == 1
    assert "bob:***@127.0.0.1:1" in result.output and "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_settings_from_root_context(tmp_path: Path) -> None:
    """A root CLI that resolved settings itself (e.g. --home) passes them in ctx.obj."""
    settings = Settings(home=tmp_path / "elsewhere")
    result = CliRunner().invoke(root, ["db", "upgrade"], obj=settings)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere" / "appkit.db").is_file()


def test_conversations_list_show_export(cli: Any, db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    with open_store(url=db_url) as store:
        a = store.create_conversation("support", title="Lost parcel")
        store.append_message(a.id, "user", "My parcel [is] lost")
        reply = store.append_message(
            a.id, "assistant", "Sorry! Let me check.", model_name="support-v1",
            moderation={"action": "flag"}, sentiment={"label": "negative", "score": 0.81},
        )
        store.add_feedback(reply.id, -1)
        b = store.create_conversation("writer", title="Blog idea")
        store.append_message(b.id, "user", "spring sale")
        store.set_status(b.id, "closed")

    result = cli("conversations", "list")
    assert result.exit_code == 0, result.output
    assert "Lost parcel" in result.output and "Blog idea" in result.output
    assert result.output.index("Blog idea") < result.output.index("Lost parcel")  # newest first
    result = cli("conversations", "list", "--app", "support", "--search", "PARCEL", "--limit", "5")
    assert "Lost parcel" in result.output and "Blog idea" not in result.output
    assert "No conversations match" in cli("conversations", "list", "--status", "escalated").output
    result = cli("conversations", "list", "--status", "bogus")
    assert result.exit_code == 1 and "'bogus' is not one of" in result.output

    result = cli("conversations", "show", str(a.id))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Lost parcel" in out and "1. user" in out and "2. assistant" in out
    assert "My parcel [is] lost" in out  # markup-like text printed as is
    assert "moderation=flag" in out and "sentiment=negative (0.81)" in out and "feedback: -1" in out
    result = cli("conversations", "show", "9999")
    assert result.exit_code == 1 and "conversation 9999 does not exist" in result.output

    out_file = tmp_path / "export.jsonl"
    result = cli("conversations", "export", "--app", "support", "-o", str(out_file))
    assert result.exit_code == 0, result.output
    assert "Exported 1 conversation to" in result.output
    [line] = out_file.read_text().splitlines()
    assert [m["role"] for m in json.loads(line)["messages"]] == ["user", "assistant"]

    result = cli("conversations", "export", "--id", str(a.id), "--id", str(b.id), "-o", str(out_file))
    assert result.exit_code == 0 and "Exported 2 conversations" in result.output
    assert [json.loads(x)["status"] for x in out_file.read_text().splitlines()] == ["open", "closed"]

    result = cli("conversations", "export", "-o", str(out_file))
    assert result.exit_code == 2 and "--app APP or one or more --id" in result.output
    result = cli("conversations", "export", "--id", "4242", "-o", str(out_file))
    assert result.exit_code == 1 and "4242" in result.output
