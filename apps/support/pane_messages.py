"""How the support pane shows stored messages, and the sampling settings its replies use.

A person's answer (``Store.agent_reply``) is marked as theirs, not the bot's; a reply replaced by
regenerating stays in the database for audit but is not shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.content import Content

from appkit.tui.widgets.message import MessageView

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.store import MessageRecord

# Regenerating marks the replaced turn with this error (status "error"): the bot's history and
# the JSONL export leave error messages out, so the replaced reply neither conditions the new one
# nor becomes training data, yet stays in the database for audit.
REGENERATED = "regenerated: replaced by a newer reply"
AGENT = "agent"  # the author of an answer written in the chat by a person (Store.agent_reply)
CLOSED = ("closed", "archived")  # conversations that take no more messages (the store refuses them)


def visible(m: MessageRecord) -> bool:
    return not (m.status == "error" and (m.error or "").startswith(REGENERATED))


class AgentMessageView(MessageView):
    """A human agent's answer: a message view whose header names the agent instead of the bot."""

    def author(self) -> list[Content]:
        author = (self.record.author if self.record is not None else None) or AGENT
        name = author.partition(":")[2]
        parts = [Content.styled("agent", "bold $text-warning")]
        if name:
            parts.append(Content.styled(f"· {name}", "$text-muted"))
        return [*parts, Content.styled(" answered by a person ", "$text-warning on $warning-muted")]


def message_view(m: MessageRecord, rating: int | None = None) -> MessageView:
    """The view of a stored message: an agent's answer is marked as the agent's, not the bot's."""
    return (AgentMessageView if m.by_agent else MessageView)(m.role, m.content, record=m, rating=rating)


def generation_params(settings: Settings) -> Any:
    """Sampling settings from appkit.toml [tui] (temperature, top_p, top_k, max_tokens, seed) over
    the support bot's own (greedy, no repetition penalty: ``replies.reply_params``)."""
    from apps.support.replies import reply_params

    tui = settings.tui
    fields = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_tokens": "max_new_tokens",
              "repetition_penalty": "repetition_penalty", "seed": "seed"}
    given = {dst: getattr(tui, src) for src, dst in fields.items() if getattr(tui, src) is not None}
    return reply_params(**given)
