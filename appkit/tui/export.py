"""Export one conversation: Markdown for people, JSONL for the next training run.

JSONL goes through ``Store.export_jsonl`` so the file is exactly what ``appkit.data.read_history``
(and so ``appkit support train --history``) reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from appkit.errors import StorageError
from appkit.files import write_text_atomic

if TYPE_CHECKING:
    from appkit.store import ConversationRecord, MessageRecord, Store

FORMATS = {"markdown": ".md", "jsonl": ".jsonl"}
ROLE_NAMES = {"user": "Customer", "assistant": "Bot", "system": "System"}


def default_path(conversation_id: int, fmt: str, directory: Path | None = None) -> Path:
    """Where an export goes unless the user says otherwise: the current directory."""
    return (directory or Path.cwd()) / f"conversation-{conversation_id}{FORMATS[fmt]}"


def with_format(path: str, fmt: str) -> str:
    """``path`` with the extension of ``fmt`` (when it had the other format's extension or none)."""
    p = Path(path)
    if p.suffix in FORMATS.values() or not p.suffix:
        return str(p.with_suffix(FORMATS[fmt]))
    return path


def conversation_markdown(conv: ConversationRecord, messages: list[MessageRecord]) -> str:
    """The conversation as a Markdown document (failed replies left out, flags kept)."""
    title = conv.title or f"Conversation {conv.id}"
    started = f"{conv.created_at:%Y-%m-%d %H:%M}"
    lines = [f"# {title}", "", f"*{conv.app} conversation {conv.id} · status {conv.status} · started {started}*", ""]
    for m in messages:
        if m.status == "error":
            continue
        notes = [n for n in message_notes(m) if n]
        head = f"## {ROLE_NAMES.get(m.role, m.role)}"
        if notes:
            head += f" ({', '.join(notes)})"
        lines += [head, "", m.content.strip() or "*(empty)*", ""]
    return "\n".join(lines).rstrip() + "\n"


def message_notes(m: MessageRecord) -> list[str]:
    """Short flags of a message: stopped, safety action, sentiment label, handoff."""
    notes = []
    if m.status == "stopped":
        notes.append("stopped")
    action = (m.moderation or {}).get("action")
    if action and action != "allow":
        notes.append(f"safety: {action}")
    label = (m.sentiment or {}).get("label")
    if label:
        notes.append(f"sentiment: {label}")
    if m.template_name and "handoff" in m.template_name:
        notes.append("handed to a human")
    return notes


def export_conversation(store: Store, conversation_id: int, path: str | Path, fmt: str) -> Path:
    """Write conversation ``conversation_id`` to ``path`` as ``fmt`` (markdown | jsonl); returns the path."""
    if fmt not in FORMATS:
        raise StorageError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}.")
    target = Path(path).expanduser().resolve()
    if fmt == "jsonl":
        if store.export_jsonl([conversation_id], target) == 0:
            raise StorageError(f"conversation {conversation_id} has no messages to export yet.")
        return target
    text = conversation_markdown(store.get_conversation(conversation_id), store.messages(conversation_id))
    try:
        write_text_atomic(target, text, private=True)  # a customer's conversation: the owner's eyes only
    except OSError as e:
        raise StorageError(f"cannot write export to {target}: {e.strerror or e}.") from None
    return target
