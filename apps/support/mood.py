"""The customer's mood, read by the sentiment app, stored on each customer message.

When a sentiment model is trained (``appkit sentiment train``), the support bot scores every
customer message with it and stores the result on the message; the TUI shows it. A sharp
drop between two customer messages of a conversation (``[support] escalate_on_sentiment_drop``,
a fall of the score in [-1, 1]) hands the conversation to a human: a customer going from
neutral to furious is worth a person's attention even if they never asked for one.
Without a sentiment model nothing is scored and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from apps.support.settings import DEFAULTS

if TYPE_CHECKING:
    from appkit.config import Settings
    from apps.support.settings import SupportSettings


class CustomerMood:
    """Scores customer messages with the active sentiment model."""

    def __init__(self, analyzer: Any, *, drop: float = DEFAULTS.escalate_on_sentiment_drop) -> None:
        self.analyzer = analyzer
        self.drop = drop

    @property
    def model_name(self) -> str:
        return str(getattr(self.analyzer, "model_name", "sentiment"))

    def score(self, text: str) -> dict[str, Any]:
        """What is stored on the message: label, probabilities, score in [-1, 1] and the model."""
        # The sentiment app's score is the expected polarity in [-1, 1] (None when its labels
        # have no order, e.g. topics: such a model is stored but never triggers a handoff).
        result = self.analyzer.analyze([text])[0]
        probabilities = {str(k): round(float(v), 4) for k, v in dict(result.probabilities).items()}
        score = None if result.score is None else round(float(result.score), 4)
        return {"label": str(result.label), "score": score, "probabilities": probabilities, "model": self.model_name}

    def dropped(self, before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> bool:
        """Whether the mood fell by at least ``drop`` since the customer's previous message."""
        if self.drop <= 0 or not before or before.get("score") is None or now.get("score") is None:
            return False
        return float(before["score"]) - float(now["score"]) >= self.drop

    def close(self) -> None:
        closer = getattr(self.analyzer, "close", None)
        if callable(closer):
            closer()


def open_mood(settings: Settings) -> CustomerMood | None:
    """The active sentiment model as a CustomerMood, or None when there is none (or it is off).

    Raises:
        ModelError: a sentiment model is active but cannot be loaded. Running on without it
            would silently stop handing upset customers to a person, so the bot does not start;
            the message says how to fix it or turn the feature off.
    """
    from appkit.apps import available_apps, load_app
    from appkit.errors import ModelError
    from appkit.store import open_store

    config: SupportSettings = settings.app("support")
    if not config.sentiment or "sentiment" not in available_apps():
        return None
    with open_store(settings) as store:
        active = store.active_model("sentiment")
    if active is None:
        return None  # no sentiment model trained: the bot works as before
    try:
        analyzer = load_app("sentiment", model=active.name, settings=settings)
    except ModelError as e:
        raise ModelError(
            f"the active sentiment model {active.name!r} cannot be loaded, so the support bot could not hand "
            f"upset customers to a person: {e} Retrain it (`appkit sentiment train`), make another one active "
            "(`appkit models promote NAME`), or set `sentiment = false` under [support] in appkit.toml."
        ) from None
    return CustomerMood(analyzer, drop=config.escalate_on_sentiment_drop)
