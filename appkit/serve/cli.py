"""``appkit serve`` and ``appkit keys create | list | revoke``.

Importing this module stays cheap (``appkit --help``): FastAPI, uvicorn, torch and SQLAlchemy
load inside the commands.
"""

from __future__ import annotations

import re
from typing import Optional

import typer

from appkit.errors import ConfigError

keys_app = typer.Typer(help="API keys of `appkit serve`: create, list, revoke.", no_args_is_help=True)
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(?:min|minute|m))?\s*$", re.IGNORECASE)


def _settings(ctx: typer.Context):  # noqa: ANN202 - Settings, imported lazily
    from appkit.config import settings_from

    return settings_from(ctx)


def serve_command(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1; any other address needs an API key first)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default 8000; 0 picks a free one)."),
    app: Optional[list[str]] = typer.Option(None, "--app", help="Serve this app: support, writer or sentiment (repeat; default: every app with an active model)."),
    model: Optional[list[str]] = typer.Option(None, "--model", help="Also serve this registered model (or model folder) raw, under its name (repeat)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes, each with its own copy of the models (default 1)."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", min=1, help="Replies decoded together per model (default 32)."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", min=0, help="Replies waiting per model before 429 (default 64)."),
    cors_origin: Optional[list[str]] = typer.Option(None, "--cors-origin", help="A browser origin allowed to call the API (repeat)."),
    log_bodies: Optional[bool] = typer.Option(None, "--log-bodies/--no-log-bodies", help="Put message text in the access log (off by default)."),
    shutdown_grace: Optional[float] = typer.Option(None, "--shutdown-grace", min=0, help="Seconds running replies get to finish on SIGTERM (default 30)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads per worker (default: the cores less one)."),
) -> None:
    """Serve the apps over HTTP: the OpenAI API, app routes, /metrics and a web chat page at /."""
    from appkit.serve.options import load_options
    from appkit.serve.server import run

    settings = _settings(ctx)
    options = load_options(settings, host=host, port=port, apps=app or None, models=model or None, workers=workers,
                           max_batch=max_batch, max_queue=max_queue, cors_origins=cors_origin or None,
                           log_bodies=log_bodies, shutdown_grace_s=shutdown_grace, threads=threads)
    raise typer.Exit(run(settings, options))


def parse_rate(text: str) -> int:
    """``60/min`` or ``60`` -> 60 requests a minute."""
    m = _RATE.match(text)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"--rate {text}: expected requests a minute, e.g. 60/min (at least 1).")
    return int(m.group(1))


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="What the key is for (website, helpdesk ...)."),
    app: Optional[list[str]] = typer.Option(None, "--app", help="An app or model the key may use (repeat; default: all); "
                                            "'agent': it may post human agents' answers."),
    rate: str = typer.Option("60/min", "--rate", help="Requests a minute, e.g. 60/min."),
) -> None:
    """Create a key; it is printed once on stdout and only its hash is stored."""
    from appkit.apps import available_apps
    from appkit.errors import NotFoundError
    from appkit.store import open_store
    from appkit.store.records import AGENT_SCOPE

    per_minute = parse_rate(rate)
    with open_store(_settings(ctx)) as store:
        for target in app or ():
            if target in available_apps() or target == AGENT_SCOPE:
                continue
            try:
                store.get_model(target)
            except NotFoundError:
                raise ConfigError(f"--app {target}: neither an app ({', '.join(available_apps())}) nor a registered "
                                  "model (see `appkit models list`).") from None
        record, key = store.create_api_key(name, apps=list(app) if app else None, rate_per_minute=per_minute)
    typer.echo(key)
    scope = ", ".join(record.apps) if record.apps else "every app and model"
    typer.echo(f"[key {record.name!r} (id {record.id}) for {scope}, {record.rate_per_minute} requests/min; "
               "it is shown only now: store it safely]", err=True)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Every key: name, its first characters, scope, rate, created, and whether it was revoked."""
    from rich.console import Console
    from rich.table import Table

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        records = store.list_api_keys()
    if not records:
        typer.echo("no API keys yet: create one with `appkit keys create --name NAME`.")
        return
    table = Table("id", "name", "key", "apps", "rate", "created", "status", box=None)
    for r in records:
        status = "[green]active[/]" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(str(r.id), r.name, r.prefix + "...", ", ".join(r.apps) if r.apps else "all",
                      f"{r.rate_per_minute}/min", r.created_at.strftime("%Y-%m-%d %H:%M"), status)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key: str = typer.Argument(..., help="The key's name or id.")) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        record = store.revoke_api_key(key)
    typer.echo(f"key {record.name!r} (id {record.id}) is revoked.")
