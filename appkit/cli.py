"""The ``appkit`` command: one group per installed app, then the framework's own commands.

Every app gets the same shape, built from the registry (appkit.apps): ``appkit NAME train``,
``appkit NAME eval``, ``appkit NAME chat`` (the terminal UI on its tab) and the app's own
commands (``appkit support ask``, ``appkit writer write``, ``appkit sentiment analyze``). Older
top-level names an app declares as aliases (``appkit train-support``, ``appkit ask``) keep
working, hidden from ``--help``; an alias also takes ``--app NAME`` to mean that app's command
of the same name (``appkit eval --app writer`` is ``appkit writer eval``).

Importing this module must stay cheap (``appkit --help`` answers in well under a second):
torch, transformers, SQLAlchemy and Textual are imported inside the commands that need them.
Every ``AppkitError`` is printed as one message with a non-zero exit code; a traceback means a
bug in appkit.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from appkit.errors import AppkitError, ConfigError

APPS_PANEL = "Apps"
_mounted = False


class RootGroup(TyperGroup):
    """The root group: resolves the apps' aliases (``train-support`` -> ``support train``) without listing them."""

    aliases: dict[str, tuple[str, str]] = {}  # alias -> (app, command)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[Any, Any, list[str]]:
        if args and args[0] in self.aliases and args[0] not in self.commands:
            alias = args[0]
            app, command = self.aliases[alias]
            rest, chosen = _take_app_option(args[1:])
            app = chosen or app
            group = self.commands.get(app) if app in self.apps else None
            if group is None:
                raise ConfigError(f"`appkit {alias} --app {app}`: unknown app {app!r}; installed apps: "
                                  f"{', '.join(self.apps) or 'none'}.")
            if command not in getattr(group, "commands", {}):
                raise ConfigError(f"`appkit {alias}` is `appkit {self.aliases[alias][0]} {command}`, and the {app} "
                                  f"app has no {command} command (see `appkit {app} --help`).")
            return super().resolve_command(ctx, [app, command, *rest])
        return super().resolve_command(ctx, args)

    @property
    def apps(self) -> list[str]:
        """The command groups of installed apps."""
        return sorted(name for name, cmd in self.commands.items() if getattr(cmd, "rich_help_panel", None) == APPS_PANEL)


def _take_app_option(args: list[str]) -> tuple[list[str], str | None]:
    """``args`` without its first ``--app NAME`` (or ``--app=NAME``), and NAME."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--app" and i + 1 < len(args):
            return [*args[:i], *args[i + 2:]], args[i + 1]
        if arg.startswith("--app="):
            return [*args[:i], *args[i + 1:]], arg.split("=", 1)[1]
    return args, None


cli = typer.Typer(
    name="appkit",
    cls=RootGroup,
    help="Train your own language model on your own data and run chatbots and content tools on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_cli = typer.Typer(help="Trained models: list, show, promote.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")


@cli.callback()
def root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", envvar="APPKIT_HOME", help="Where models, runs and the database live (default ~/.appkit)."),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="APPKIT_DATABASE_URL", help="SQLAlchemy URL; SQLite in --home by default.", show_envvar=True),
    device: Optional[str] = typer.Option(None, "--device", envvar="APPKIT_DEVICE", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Settings shared by every command (environment variables and appkit.toml work too)."""
    from appkit.config import load_settings

    ctx.obj = load_settings(home=home, database_url=database_url, device=device)


def _settings(ctx: typer.Context):  # noqa: ANN202 - Settings, imported lazily
    from appkit.config import settings_from

    return settings_from(ctx)


@models_cli.command("list")
def models_list(ctx: typer.Context, app: Optional[str] = typer.Option(None, "--app", help="Only this app's models.")) -> None:
    """Trained models with preset, size, data, validation figure (perplexity or accuracy) and date."""
    from rich.console import Console
    from rich.table import Table

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        records = store.list_models(app=app)
    if not records:
        from appkit.apps import available_apps

        hints = "; ".join(f"`{app.train_hint}`" for app in available_apps().values())
        typer.echo(f"no models yet: train one with {hints or 'an installed app'}.")
        return
    table = Table("name", "app", "status", "preset", "params", "data", "validation", "trained", box=None)
    for r in records:
        metrics, data = r.metrics or {}, r.data or {}
        params = f"{r.params / 1e6:.1f}M" if r.params else "-"
        table.add_row(
            r.name, r.app, "[green]active[/]" if r.status == "active" else r.status, r.preset or "-", params,
            _data_summary(data), _validation_summary(metrics), r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


def _validation_summary(metrics: dict[str, Any]) -> str:
    """A model's headline validation figure: perplexity for language models, accuracy for classifiers."""
    if metrics.get("val_perplexity"):
        return f"ppl {metrics['val_perplexity']:.2f}"
    if metrics.get("val_accuracy") is not None:
        return f"acc {metrics['val_accuracy']:.1%}"
    return "-"


def _data_summary(data: dict[str, object]) -> str:
    """What a model learned from, in a few words: '4514 conv. (tickets.csv)', '472 docs (posts)'."""
    if data.get("summary"):
        return str(data["summary"])
    if data.get("conversations"):
        return f"{data['conversations']} conv. ({Path(str(data.get('history', ''))).name})"
    return "-"


@models_cli.command("promote")
def models_promote(ctx: typer.Context, name: str = typer.Argument(..., help="A registered model name.")) -> None:
    """Make NAME its app's active model (the previous one is archived)."""
    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        record = store.promote(name)
    typer.echo(f"{record.name} is now the active {record.app} model.")


@models_cli.command("show")
def models_show(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Everything recorded about model NAME (JSON)."""
    import dataclasses
    import json

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        record = store.get_model(name)
    typer.echo(json.dumps(dataclasses.asdict(record), indent=2, default=str))


def chat_command(app_name: str) -> Any:
    """``appkit NAME chat`` for an app that has no command of that name: the terminal UI on its tab."""

    def chat(ctx: typer.Context, model: Optional[str] = typer.Option(
            None, "--model", help="A registered model name or a model directory (default: the app's active model).")) -> None:
        """Open the terminal UI on this app's tab (every installed app has one; F1 lists the keys)."""
        from appkit.tui import run_chat

        run_chat(_settings(ctx), app=app_name, model=model)

    return chat


def _command_names(group: typer.Typer) -> set[str]:
    from typer.main import get_command_name

    return {c.name or get_command_name(c.callback.__name__) for c in group.registered_commands if c.callback}


def mount_apps(root: typer.Typer = cli) -> None:
    """One command group per installed app (``appkit NAME ...``) and the apps' aliases."""
    from appkit.apps import available_apps

    # Mounting again (a test, after installing an app) replaces the apps mounted before.
    root.registered_groups[:] = [g for g in root.registered_groups if g.rich_help_panel != APPS_PANEL]
    taken = {info.name for info in root.registered_groups} | _command_names(root)
    aliases: dict[str, tuple[str, str]] = {}
    for app in available_apps().values():
        if app.name in taken:
            warnings.warn(f"appkit app {app.name!r} is not mounted: `appkit {app.name}` is already a command.",
                          stacklevel=2)
            continue
        group = app.commands()
        if "chat" not in _command_names(group):
            group.command("chat")(chat_command(app.name))
        root.add_typer(group, name=app.name, help=app.description, rich_help_panel=APPS_PANEL)
        for alias, command in app.aliases.items():
            if alias in taken or alias in aliases:
                warnings.warn(f"appkit app {app.name!r}: alias `appkit {alias}` is already taken.", stacklevel=2)
                continue
            aliases[alias] = (app.name, command)
    RootGroup.aliases = aliases


def _mount_subcommands() -> None:
    global _mounted
    if _mounted:
        mount_apps(cli)
        return
    _mounted = True
    from appkit.insights.cli import report_command
    from appkit.safety.cli import audit_command, safety_app
    from appkit.serve.cli import keys_app, serve_command
    from appkit.store.cli import conversations_app, db_app, models_rollback
    from appkit.train.cli import pretrain_command

    cli.add_typer(db_app, name="db")
    cli.add_typer(conversations_app, name="conversations")
    cli.add_typer(safety_app, name="safety")
    cli.command("audit")(audit_command)
    cli.command("pretrain")(pretrain_command)
    cli.command("serve")(serve_command)
    cli.add_typer(keys_app, name="keys")
    cli.command("report")(report_command)
    models_cli.command("rollback")(models_rollback)
    mount_apps(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``appkit`` command; returns the exit code."""
    _mount_subcommands()
    try:
        code = cli(args=argv, prog_name="appkit", standalone_mode=False)
    except AppkitError as e:
        _fail(str(e), e.exit_code)
        return e.exit_code
    except KeyboardInterrupt:
        _fail("interrupted.", 130)
        return 130
    except typer.Exit as e:  # --help, or a command that exits on purpose
        return e.exit_code
    except typer.Abort:
        _fail("aborted.", 1)
        return 1
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        if _is_usage_error(e):
            e.show()  # type: ignore[attr-defined]
            return e.exit_code  # type: ignore[attr-defined,no-any-return]
        raise
    # In non-standalone mode click returns ctx.exit()'s code (or the command's return value).
    return code if isinstance(code, int) else 0


def _is_usage_error(error: Exception) -> bool:
    """A bad option or argument. typer 0.29+ vendors its own click, whose ClickException derives
    from typer.TyperException instead of click's; older typer raises click's own."""
    import click  # typer < 0.29 raises click's own errors

    usage_errors: tuple[type[Exception], ...] = (click.ClickException, *(
        [typer.TyperException] if hasattr(typer, "TyperException") else []))
    return isinstance(error, usage_errors) and hasattr(error, "show")


def _fail(message: str, code: int) -> None:
    from rich.console import Console
    from rich.text import Text

    # Text, not markup: messages quote user data such as "[EMAIL]" verbatim.
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(message))
