"""``appkit db ...`` and ``appkit conversations ...``: typer sub-apps mounted by appkit.cli.

The root CLI mounts them with ``add_typer(db_app, name="db")`` and
``add_typer(conversations_app, name="conversations")``. Settings come from ``ctx.obj`` when the
root put a :class:`appkit.config.Settings` there (e.g. after ``--home``), else from
:func:`appkit.config.load_settings`. Errors are AppkitError subclasses; the root CLI prints
them and exits with their ``exit_code``. SQLAlchemy and rich are imported inside the commands
so that ``appkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from appkit.errors import ConfigError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.store.records import MessageRecord

db_app = typer.Typer(name="db", help="Database schema: upgrade, downgrade, show the revision.", no_args_is_help=True)
conversations_app = typer.Typer(
    name="conversations", help="Browse, answer and export stored conversations.", no_args_is_help=True
)


def _settings(ctx: typer.Context) -> Settings:
    from appkit.config import settings_from

    return settings_from(ctx)


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: str = typer.Option("head", "--revision", "-r", help="Target revision."),
) -> None:
    """Migrate the database schema up to REVISION (default: the newest)."""
    from appkit.store import db

    url = _settings(ctx).database_url
    before = db.current(url)
    after = db.upgrade(url, revision)
    if before == after:
        typer.echo(f"{db.mask_url(url)}: already at revision {after}.")
    else:
        typer.echo(f"{db.mask_url(url)}: upgraded from {before or 'empty'} to {after}.")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(..., help="Target revision; 'base' removes every appkit table."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Migrate the database schema down to REVISION (this can drop tables and their data)."""
    from appkit.store import db

    url = _settings(ctx).database_url
    masked = db.mask_url(url)
    if not yes and not typer.confirm(f"Downgrade {masked} to {revision}? Data in removed tables is lost."):
        raise typer.Abort()
    before = db.current(url)
    after = db.downgrade(url, revision)
    typer.echo(f"{masked}: downgraded from {before or 'empty'} to {after or 'empty (base)'}.")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the database URL (password hidden), its schema revision and the newest one."""
    from appkit.store import db

    url = _settings(ctx).database_url
    rev = db.current(url)
    newest = db.head()
    if rev == newest:
        state = "up to date"
    elif rev is not None and rev not in db.known_revisions():
        state = "newer than this appkit: upgrade appkit"
    else:
        state = "behind: run `appkit db upgrade`"
    typer.echo(f"database: {db.mask_url(url)}")
    typer.echo(f"current:  {rev or 'none (empty)'}")
    typer.echo(f"head:     {newest}")
    typer.echo(f"status:   {state}")


# --- conversations ----------------------------------------------------------------------------


@conversations_app.command("list")
def conversations_list(
    ctx: typer.Context,
    app: Optional[str] = typer.Option(None, "--app", help="Only this app's conversations."),
    status: Optional[str] = typer.Option(None, "--status", help="open, escalated, closed or archived."),
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Text in the title or any message."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many, newest first."),
) -> None:
    """List conversations, most recently active first."""
    from rich.console import Console
    from rich.table import Table

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        rows = store.list_conversations(app=app, status=status, search=search, limit=limit)
    console = Console()
    if not rows:
        console.print("No conversations match.")
        return
    table = Table(title=None, show_lines=False)
    for name, justify in (("ID", "right"), ("App", "left"), ("Title", "left"), ("Status", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("Msgs", justify="right")
    table.add_column("Updated (UTC)", no_wrap=True)
    for c in rows:
        table.add_row(
            str(c.id), c.app, c.title or "", c.status, str(c.message_count), c.updated_at.strftime("%Y-%m-%d %H:%M")
        )
    console.print(table)


@conversations_app.command("show")
def conversations_show(ctx: typer.Context, conversation_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Show one conversation: every message with its role, time, moderation and sentiment."""
    from rich.console import Console
    from rich.markup import escape

    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        conv = store.get_conversation(conversation_id)
        messages = store.messages(conversation_id)
        ratings = {f.message_id: f.rating for f in store.feedback_for(conversation_id)}
    console = Console(highlight=False)
    console.print(
        f"[bold]#{conv.id}[/bold] {escape(conv.title or '(untitled)')}  "
        f"app={escape(conv.app)} status={conv.status} messages={len(messages)}"
    )
    for m in messages:
        console.print(f"\n[bold]{m.seq}. {m.role}[/bold]  {m.created_at:%Y-%m-%d %H:%M:%S} UTC{_details(m)}")
        if m.id in ratings:
            console.print(f"   feedback: {'+1' if ratings[m.id] > 0 else '-1'}")
        console.print(escape(m.content))


def _details(m: MessageRecord) -> str:
    from rich.markup import escape

    parts = []
    if m.model_name:
        parts.append(f"model={m.model_name}")
    if m.status != "ok":
        parts.append(f"status={m.status}" + (f" ({m.error})" if m.error else ""))
    if m.moderation:
        action = m.moderation.get("action")
        parts.append(f"moderation={action}" if action else f"moderation={m.moderation}")
    if m.sentiment:
        label, score = m.sentiment.get("label"), m.sentiment.get("score")
        if label is not None:
            parts.append(f"sentiment={label}" + (f" ({float(score):.2f})" if score is not None else ""))
        else:
            parts.append(f"sentiment={m.sentiment}")
    return escape("  [" + ", ".join(parts) + "]") if parts else ""


@conversations_app.command("export")
def conversations_export(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write (replaced atomically)."),
    app: Optional[str] = typer.Option(None, "--app", help="Export every conversation of this app."),
    ids: Optional[list[int]] = typer.Option(None, "--id", help="Export this conversation (repeatable)."),
) -> None:
    """Export conversations as chat fine-tuning JSONL (what `appkit train-*` reads as history)."""
    from appkit.store import open_store

    if bool(app) == bool(ids):
        raise ConfigError("conversations export: give either --app APP or one or more --id ID (not both).")
    with open_store(_settings(ctx)) as store:
        count = store.export_jsonl(app if app else list(ids or []), output)
    typer.echo(f"Exported {count} conversation{'s' if count != 1 else ''} to {output}.")


@conversations_app.command("reply")
def conversations_reply(
    ctx: typer.Context,
    conversation_id: int = typer.Argument(..., metavar="ID"),
    text: str = typer.Argument(..., help="What the customer reads."),
    author: str = typer.Option("agent", "--as", help="Who answers: agent, or agent:NAME."),
    close: bool = typer.Option(False, "--close", help="Close the conversation after this answer."),
) -> None:
    """Answer conversation ID as a human agent (after a handoff); `appkit support retrain` learns from these."""
    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        message = store.agent_reply(conversation_id, text, author=author)
        status = store.set_status(conversation_id, "closed").status if close else \
            store.get_conversation(conversation_id).status
    typer.echo(f"conversation {conversation_id}: message {message.seq} by {author} stored (status {status}).")


def models_rollback(
    ctx: typer.Context,
    app: str = typer.Option("support", "--app", help="Whose last promotion to undo."),
) -> None:
    """Undo the app's last promotion: the model active before it is active again."""
    from appkit.errors import ModelError
    from appkit.store import open_store

    with open_store(_settings(ctx)) as store:
        active = store.active_model(app)
        if active is not None and active.previous:
            try:
                previous = store.get_model(active.previous)
            except Exception:  # not registered any more: rollback() says so
                previous = None
            if previous is not None and not (Path(previous.path) / "config.json").is_file():
                raise ModelError(f"{active.previous!r} is registered at {previous.path}, but no model is there any "
                                 f"more: nothing to roll back to ({active.name} stays active).")
        back, retired = store.rollback(app)
    typer.echo(f"{back.name} is the active {app} model again; {retired.name} is archived "
               f"(`appkit models promote {retired.name}` brings it back).")
