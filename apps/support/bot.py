"""The support bot: replies to a customer, conditioned on the conversation so far."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.config import Settings, load_settings
from appkit.errors import GenerationError

if TYPE_CHECKING:
    from appkit.engine import Engine, GenerationParams, Reply

Message = dict[str, str]


class SupportBot:
    """A loaded support model and the way it is prompted."""

    def __init__(self, engine: Engine, *, model_name: str, settings: Settings) -> None:
        self.engine = engine
        self.model_name = model_name
        self.settings = settings

    @classmethod
    def open(cls, *, model: str | None = None, settings: Settings | None = None, **options: Any) -> SupportBot:
        """Load the active support model (or ``model``: a registered name or a directory)."""
        from appkit.engine import Engine
        from appkit.models import resolve_model_path
        from apps.support.app import TRAIN_HINT

        settings = settings or load_settings()
        name, path = resolve_model_path("support", model, settings, train_hint=TRAIN_HINT)
        engine = Engine.load(path, device=settings.resolve_device())
        engine.name = name
        return cls(engine, model_name=name, settings=settings)

    def messages_for(self, message: str, history: Sequence[Message] = ()) -> list[Message]:
        """The model's input: earlier turns, trimmed oldest-first to fit the context, then ``message``."""
        if not message.strip():
            raise GenerationError("the message is empty; type what the customer asked.")
        turns = [*history, {"role": "user", "content": message}]
        budget = self.engine.context_length - 64  # leave room for a reply
        while len(turns) > 1 and len(self.engine.prompt_ids(turns)) > budget:
            turns = turns[1:]
        return turns

    def stream(self, message: str, history: Sequence[Message] = (), params: GenerationParams | None = None) -> Any:
        """Stream a reply to ``message``: iterate the result for text pieces."""
        return self.engine.stream(self.messages_for(message, history), params)

    def reply(self, message: str, history: Sequence[Message] = (), params: GenerationParams | None = None) -> Reply:
        """The whole reply to ``message``."""
        return self.engine.reply(self.messages_for(message, history), params)

    def close(self) -> None:
        self.engine.close()
