"""Request bodies of the HTTP API (pydantic): OpenAI's chat and moderation requests, appkit's app routes.

Fields OpenAI defines and appkit cannot honour (tools, logprobs, structured output) are refused
with a 400 naming them rather than silently ignored; fields it does not know are ignored, as
OpenAI-compatible servers do. ``min_tokens``, ``top_k`` and ``repetition_penalty`` are vLLM's
extensions (pass them with the openai client's ``extra_body``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appkit.serve.errors import ApiError

UNSUPPORTED = {"tools": "tool calls", "tool_choice": "tool calls", "functions": "function calls",
               "function_call": "function calls", "logprobs": "log-probabilities", "top_logprobs": "log-probabilities",
               "response_format": "structured output", "audio": "audio", "modalities": "audio"}


class Sampling(BaseModel):
    """Sampling fields shared by the chat API and the app routes."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    min_tokens: int | None = Field(None, ge=0)
    seed: int | None = None
    stop: str | list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def params(self, seed_offset: int = 0) -> Any:
        """GenerationParams from the fields given (None when none was: the app's own defaults apply)."""
        from dataclasses import replace

        from appkit.engine import GenerationParams

        given = {name: getattr(self, name) for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed")
                 if getattr(self, name) is not None}
        most = self.max_completion_tokens or self.max_tokens
        if most is not None:
            given["max_new_tokens"] = most
        if self.min_tokens is not None:
            given["min_new_tokens"] = self.min_tokens
        if self.stop:
            given["stop"] = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if not given:
            return None
        if given.get("min_new_tokens", 0) > given.get("max_new_tokens", GenerationParams.max_new_tokens):
            raise ApiError(400, "min_tokens must not exceed max_tokens.", param="min_tokens", code="invalid_request")
        params = GenerationParams(**given)  # the values are range-checked above
        if seed_offset and params.seed is not None:
            params = replace(params, seed=params.seed + seed_offset)
        return params


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        for part in self.content:
            if part.type != "text":
                raise ApiError(400, f"content parts of type {part.type!r} are not supported (text only).",
                               param="messages", code="invalid_request")
        return "".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(Sampling):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=8)
    user: str | None = Field(None, max_length=255)

    def refuse_unsupported(self) -> None:
        """400 for OpenAI features appkit does not have, naming the field."""
        for name, what in UNSUPPORTED.items():
            value = (self.model_extra or {}).get(name)
            if value not in (None, False, [], {}) and not (name == "response_format" and value == {"type": "text"}):
                raise ApiError(400, f"{name}: {what} are not supported by appkit models.", param=name,
                               code="unsupported_parameter")

    def chat(self, max_chars: int) -> list[dict[str, str]]:
        """The messages as the engine takes them (``developer`` is a system message)."""
        out = []
        for i, m in enumerate(self.messages):
            text = m.text()
            if len(text) > max_chars:
                raise ApiError(400, f"messages[{i}].content is {len(text)} characters long; the limit is {max_chars}.",
                               param=f"messages[{i}].content", code="message_too_long")
            out.append({"role": "system" if m.role == "developer" else m.role, "content": text})
        return out


class ModerationRequest(BaseModel):
    """POST /v1/moderations."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(...)
    model: str | None = None

    def texts(self, max_chars: int) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else list(self.input)
        if not texts or len(texts) > 256:
            raise ApiError(400, "input must hold 1 to 256 texts.", param="input", code="invalid_request")
        for i, t in enumerate(texts):
            if len(t) > max_chars:
                raise ApiError(400, f"input[{i}] is {len(t)} characters long; the limit is {max_chars}.",
                               param=f"input[{i}]", code="message_too_long")
        return texts


class NewConversation(BaseModel):
    """POST /v1/conversations."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, max_length=255, description="Your own id for the customer.")
    title: str | None = Field(None, max_length=255)


class CustomerMessage(Sampling):
    """POST /v1/conversations/{id}/messages."""

    content: str = Field(..., min_length=1, description="What the customer wrote.")
    stream: bool = Field(True, description="Server-sent events as the reply is written (false: one JSON answer).")


class Rating(BaseModel):
    """POST /v1/conversations/{id}/messages/{message_id}/feedback."""

    model_config = ConfigDict(extra="forbid")

    rating: Literal[1, -1]
    comment: str | None = Field(None, max_length=2000)


class Handoff(BaseModel):
    """POST /v1/conversations/{id}/handoff."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("asked_for_human", max_length=64, pattern=r"^[a-z_]+$")


class AgentReply(BaseModel):
    """POST /v1/conversations/{id}/agent-reply: a human agent's answer (after a handoff)."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(..., min_length=1, max_length=20000)
    agent: str | None = Field(None, max_length=64, pattern=r"^[^\s:]+$")  # who answered, if it should be recorded
    close: bool = False  # close the conversation with this answer


class SentimentRequest(BaseModel):
    """POST /v1/sentiment."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(..., min_length=1, max_length=1000)


class WriteRequest(Sampling):
    """POST /v1/write: a brief."""

    title: str = Field(..., min_length=1, max_length=300)
    format: str | None = Field(None, description="blog, social, email or product")
    tone: str | None = Field(None, max_length=100)
    words: int | None = Field(None, description="The draft's length in words (20-2000).")
    tags: list[str] = Field(default_factory=list, max_length=20)
    stream: bool = False
