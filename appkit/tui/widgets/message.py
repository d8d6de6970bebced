"""One message in the chat pane: a header line with its flags, and the text as Markdown.

A reply is mounted empty and grows while the model streams (``append``); ``finish`` swaps in
the stored record, whose flags (stopped, safety action, sentiment, handoff) the header shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Markdown, Static

from appkit.tui.bindings import MESSAGE, bindings

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from appkit.store import MessageRecord

ROLE_LABELS = {"user": "customer", "assistant": "bot", "system": "system"}


class MessageView(Vertical, can_focus=True):
    """A stored (or streaming) message; focus it to copy or rate it."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(MESSAGE)

    class Rate(Message):
        """The user asked to rate this reply (+1 / -1)."""

        def __init__(self, view: MessageView, rating: int) -> None:
            super().__init__()
            self.view = view
            self.rating = rating

    def __init__(self, role: str, content: str = "", *, record: MessageRecord | None = None,
                 rating: int | None = None, streaming: bool = False, model: str | None = None) -> None:
        super().__init__(classes=f"message -{role}")
        self.role = role
        self.text = content
        self.record = record
        self.rating = rating
        self.streaming = streaming
        self.model = model or (record.model_name if record else None)
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Static(self.header(), classes="meta")
        # Links in model output are not opened on click: the text is generated, not trusted.
        yield Markdown(self.text, open_links=False)

    def header(self) -> Content:
        """Who wrote it and its flags, e.g. ``bot · toy  stopped  safety: flag  rated +``."""
        parts = self.author()
        for text, style in self.flags():
            parts.append(Content.styled(f" {text} ", style))
        return Content(" ").join(parts)

    def author(self) -> list[Content]:
        """The header's first words: who wrote the message."""
        parts = [Content.styled(ROLE_LABELS.get(self.role, self.role), "bold")]
        if self.role == "assistant" and self.model:
            parts.append(Content.styled(f"· {self.model}", "$text-muted"))
        return parts

    def flags(self) -> list[tuple[str, str]]:
        """(label, style) badges for the header."""
        out: list[tuple[str, str]] = []
        if self.streaming:
            out.append(("replying…", "italic $text-muted"))
        r = self.record
        if self.error or (r is not None and r.status == "error"):
            out.append(("failed", "bold $text-error on $error-muted"))
        if r is not None:
            if r.status == "stopped":
                out.append(("stopped", "bold $text-warning on $warning-muted"))
            action = (r.moderation or {}).get("action")
            if action and action != "allow":
                out.append((f"safety: {action}", "bold $text-error on $error-muted"))
            sentiment = r.sentiment or {}
            if sentiment.get("label"):
                out.append((f"sentiment: {sentiment['label']}", _sentiment_style(str(sentiment["label"]))))
            if r.template_name and "handoff" in r.template_name:
                out.append(("handed to a human", "bold $text-warning on $warning-muted"))
            source = (r.grounding or {}).get("source")
            if source == "case":
                out.append(("past case", "$text-muted"))
            elif source == "generated" and (r.grounding or {}).get("mode") != "generate":
                out.append(("written by the model", "$text-muted"))
        if self.rating:
            out.append(("rated +" if self.rating > 0 else "rated -",
                        "$text-success on $success-muted" if self.rating > 0 else "$text-error on $error-muted"))
        return out

    def refresh_header(self) -> None:
        self.query_one(".meta", Static).update(self.header())

    async def append(self, text: str) -> None:
        """Add streamed text (the caller batches pieces so this runs at most ~20 times a second)."""
        if not self.is_attached:  # the user opened another conversation meanwhile
            return
        self.text += text
        await self.query_one(Markdown).append(text)

    async def finish(self, record: MessageRecord | None, *, error: str = "") -> None:
        """The reply is done: show the stored text and flags (or the error)."""
        self.streaming = False
        self.error = error
        if record is not None:
            self.record = record
            self.model = record.model_name or self.model
            if record.content != self.text:
                self.text = record.content
                await self.query_one(Markdown).update(record.content)
        elif error and not self.text:
            self.text = f"*{error}*"
            await self.query_one(Markdown).update(self.text)
        if self.is_attached:
            self.refresh_header()

    def set_rating(self, rating: int) -> None:
        self.rating = rating
        self.refresh_header()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rate":  # only a finished, stored reply can be rated
            return self.role == "assistant" and self.record is not None and not self.streaming
        if action == "source":
            return self.record is not None and bool(self.record.grounding)
        return True

    def action_source(self) -> None:
        from appkit.tui.screens.dialogs import InfoDialog

        assert self.record is not None and self.record.grounding
        self.app.push_screen(InfoDialog("Where this reply came from", describe_source(self.record.grounding)))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify("Message copied to the clipboard.", timeout=2)

    def action_rate(self, rating: int) -> None:
        self.post_message(self.Rate(self, rating))


def describe_source(grounding: dict[str, object]) -> str:
    """A reply's grounding as a few lines a support lead can read."""
    lines = [f"mode: {grounding.get('mode')}"]
    source = grounding.get("source")
    if source == "case":
        lines.append(f"a past reply, from conversation {grounding.get('case_conversation')} (score {grounding.get('score')})")
        if grounding.get("case_customer"):
            lines.append(f"  the customer there wrote: {grounding['case_customer']}")
    elif source == "generated":
        lines.append("written by the model itself" + (" (no past reply fitted well enough)"
                                                       if grounding.get("mode") == "grounded" else ""))
    candidates = grounding.get("candidates") or []
    if candidates:
        lines.append("")
        lines.append("candidates weighed (score: similarity, route, agreement, echo, pmi):")
        for c in candidates:  # type: ignore[union-attr]
            figures = ", ".join(f"{c.get(k)}" for k in ("similarity", "route", "agreement", "echo", "pmi"))
            lines.append(f"  {c.get('score')}: {figures}  {c.get('text', '')}")
    return "\n".join(lines)


def _sentiment_style(label: str) -> str:
    label = label.lower()
    if label.startswith(("neg", "1", "2", "angry", "bad")):
        return "$text-error on $error-muted"
    if label.startswith(("pos", "4", "5", "good", "happy")):
        return "$text-success on $success-muted"
    return "$text-muted"
