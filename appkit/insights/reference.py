"""What a model was trained on, as reports compare against it: its customers' messages and intents.

appkit does not know any app's files, so each app says it through its registry entry: an app
object with an ``insights_reference(settings=..., model=...)`` method returning a
:class:`Reference` (the support app reads the cases saved beside its model and the history it
was trained on). An app without one gets reports without drift and with topics named by words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appkit.config import Settings


@dataclass
class Reference:
    """The customer messages a model learned from, for drift and topic names."""

    model: str
    texts: list[str]  # customers' messages of the training split
    labels: list[str] | None = None  # their intents, when the history named one per conversation
    held_out: list[str] | None = None  # customers' messages of the validation split (never trained on)
    source: str = ""  # where they were read from, for the report

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{len(self.labels)} labels for {len(self.texts)} reference texts")


def load_reference(app: str, settings: Settings, model: str | None = None) -> tuple[Reference | None, str]:
    """The app's reference for ``model`` (default: its active model), or None and why there is none."""
    from appkit.apps import get_app
    from appkit.errors import AppkitError

    hook = getattr(get_app(app), "insights_reference", None)
    if hook is None:
        return None, f"the {app} app does not say what its model was trained on, so drift is not measured"
    try:
        reference = hook(settings=settings, model=model)
    except AppkitError as e:
        return None, f"drift is not measured: {e}"
    if reference is None or not reference.texts:
        return None, f"drift is not measured: no trained {app} model to compare with"
    return reference, ""
