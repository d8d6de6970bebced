"""What a support model was trained on, for reports (drift, topic names): appkit.insights asks through the registry.

The customers' messages come from the cases saved beside the model (``cases.jsonl``: its
training split); intents and the held-out messages come from the history it was trained on
(the registry records its path; ``split.json`` says which conversations were held out), read
and curated again as in training. Stored conversations a retrained model learned from have no
intent: their messages count for drift but name no topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from appkit.insights.reference import Reference

if TYPE_CHECKING:
    from appkit.config import Settings

APP = "support"


def support_reference(*, settings: Settings, model: str | None = None) -> Reference | None:
    """The reference of ``model`` (default: the active support model); None when it has no cases."""
    from appkit.models import resolve_model_path
    from apps.support.app import TRAIN_HINT
    from apps.support.cases import CaseIndex

    name, path = resolve_model_path(APP, model, settings, train_hint=TRAIN_HINT)
    index = CaseIndex.load(path)
    if index is None or not index.cases:
        return None
    texts = [c.customer for c in index.cases]
    intents, held_out, source = _from_history(name, path, settings)
    labels = [intents.get(c.conversation_id) for c in index.cases] if intents else None
    if labels is not None and not any(labels):
        labels = None
    return Reference(name, texts, labels, held_out, f"model {name}: {len(texts):,} training messages{source}")


def _from_history(name: str, path: Path, settings: Settings) -> tuple[dict[str, str], list[str], str]:
    """(intent by conversation id, held-out customer messages, a note) from the model's history, if it is there."""
    from appkit.errors import AppkitError, NotFoundError
    from appkit.model.io import read_metadata
    from appkit.store import open_store
    from apps.support.evaluate import read_split, split_from

    try:
        with open_store(settings) as store:
            data = store.get_model(name).data or {}
    except NotFoundError:
        data = {}  # a model folder given by path: its history is not known
    history = data.get("history")
    if not history or not Path(str(history)).is_file():
        return {}, [], " (its history file is not there: no intents, no held-out messages)"
    try:
        split = read_split(path, name)
        train, val = split_from(history, split, read_metadata(path), name)
    except AppkitError as e:
        return {}, [], f" (history not usable: {e})"
    intents = {c.id: str(c.meta["intent"]) for c in [*train, *val] if c.meta.get("intent")}
    held_out = [t.text for c in val for t in c.turns if t.role == "user"]
    named = f", intents from {Path(str(history)).name}" if intents else ""
    return intents, held_out, f"{named}; {len(held_out):,} held-out messages"

