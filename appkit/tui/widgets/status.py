"""The status bar: app, model name and size, device, speed of the last reply, safety backend."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.message import Message
from textual.widgets import Static


@dataclass(frozen=True)
class StatusInfo:
    """What one app pane reports about itself."""

    app: str
    state: str = "loading"  # loading | ready | missing | no_model | failed | busy
    model: str = ""
    parameters: int | None = None
    device: str = ""
    tokens_per_second: float | None = None
    safety: str = ""
    speed: bool = True  # whether tokens/s means something here (a chat reply does; a label does not)


def human_size(n: int | None) -> str:
    """Parameter count for people: 133440 -> 133K, 1234567 -> 1.2M, 7.1e9 -> 7.1B."""
    if not n:
        return ""
    for unit, scale in (("B", 1e9), ("M", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n / 1e3:.0f}K" if n >= 1e3 else str(n)


def status_content(info: StatusInfo) -> Content:
    """One line, most important first, so a narrow terminal cuts the least useful part."""
    sep = Content.styled(" │ ", "$text-muted")
    parts = [Content.styled(f" {info.app} ", "bold reverse")]
    if info.state == "loading":
        parts.append(Content.styled("loading model…", "italic $text-warning"))
    elif info.state in ("missing", "no_model", "failed"):
        text = {"missing": "app not installed", "no_model": "no model trained", "failed": "could not load"}
        parts.append(Content.styled(text[info.state], "$text-error"))
    else:
        size = human_size(info.parameters)
        parts.append(Content.styled(info.model or "model loaded", "bold")
                     + Content(f" · {size} params" if size else ""))
        if info.device:
            parts.append(Content(info.device))
        if info.speed:
            speed = "-" if info.tokens_per_second is None else f"{info.tokens_per_second:.1f}"
            parts.append(Content(f"{speed} tok/s"))
        if info.state == "busy":
            parts.append(Content.styled("generating…", "italic $text-accent"))
    if info.safety:
        # The lexicon alone is a word list, not a classifier: shown as degraded, not in a healthy green.
        degraded = info.safety.startswith("lexicon")
        style = "$text-warning" if info.safety == "off" or degraded else "$text-success"
        parts.append(Content("safety: ") + Content.styled(info.safety + (" (degraded)" if degraded else ""), style))
    return Content(" ").join([parts[0], sep.join(parts[1:])]) if len(parts) > 1 else parts[0]


class StatusBar(Static):
    """Docked at the bottom, above the footer."""

    def show(self, info: StatusInfo) -> None:
        self.update(status_content(info))


class StatusChanged(Message):
    """A pane's status changed; the app shows it when that pane is the active one."""

    def __init__(self, info: StatusInfo) -> None:
        super().__init__()
        self.info = info
