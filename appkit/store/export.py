"""Export conversations as JSONL in the OpenAI chat fine-tuning shape.

One object per line: ``{"id": "12", "messages": [{"role": "user", "content": "..."}, ...],
"app": "support", "status": "closed"}``. appkit.data reads exactly this shape back as a
history, so what the bot said can become the next model's training data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appkit.errors import NotFoundError, StorageError
from appkit.files import atomic_file
from appkit.store.models import Conversation, Message

# Conversations fetched per query: bounds memory on a large export.
_BATCH = 500


def export_jsonl(session: Session, target: str | Iterable[int], path: Path) -> int:
    """Write the conversations of app ``target`` (a str) or with these ids; returns lines written.

    Messages with status "error" are left out, and conversations with no messages left are
    skipped. The file is replaced atomically: a reader never sees half an export. It holds
    customers' words, so it is readable by its owner only (0600).
    """
    ids = _resolve(session, target)
    written = 0
    try:
        with atomic_file(path, newline="\n", private=True) as f:
            for record in _records(session, ids):
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    except OSError as e:
        raise StorageError(f"cannot write export to {path}: {e.strerror or e}.") from None
    return written


def _resolve(session: Session, target: str | Iterable[int]) -> list[int]:
    if isinstance(target, str):
        query = select(Conversation.id).where(Conversation.app == target).order_by(Conversation.id)
        return list(session.scalars(query))
    wanted = list(dict.fromkeys(int(i) for i in target))  # keep the caller's order, once each
    found: set[int] = set()
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        found.update(session.scalars(select(Conversation.id).where(Conversation.id.in_(chunk))))
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise NotFoundError(f"conversation(s) {shown} do not exist; nothing was exported.")
    return wanted


def _records(session: Session, ids: list[int]) -> Iterator[dict[str, Any]]:
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        convs = {c.id: c for c in session.scalars(select(Conversation).where(Conversation.id.in_(chunk)))}
        turns: dict[int, list[dict[str, str]]] = {i: [] for i in chunk}
        rows = session.execute(
            select(Message.conversation_id, Message.role, Message.content)
            .where(Message.conversation_id.in_(chunk), Message.status != "error")
            .order_by(Message.conversation_id, Message.seq)
        )
        for conversation_id, role, content in rows:
            turns[conversation_id].append({"role": role, "content": content})
        for i in chunk:
            if turns[i]:
                conv = convs[i]
                yield {"id": str(conv.id), "messages": turns[i], "app": conv.app, "status": conv.status}
