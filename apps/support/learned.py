"""What the support bot can learn from its stored conversations: human agents' answers and replies rated good.

A conversation becomes training data the way a history file is: customer turns and the answers
that were right for them.

- A human agent's answer (``appkit conversations reply ID --as agent``, the API, the TUI) after
  a handoff is the best data there is: the question the bot could not answer, answered by a
  person. It is paired with the customer's messages since the last answer, leaving out the
  sentences that ask for a person ("can I talk to a human?"), and the whole message where the
  rest only complains about the last reply.
- A bot reply rated good is kept with the question it answered.
- A reply rated bad, an unrated reply the customer moved on from, and the bot's handoff and
  waiting notices are left out.

Stored conversations keep the id ``stored-<id>``, so a model's ``split.json`` says which of them
it learned from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appkit.data import Conversation, Turn
from apps.support.handoff import asks_for_human

APP = "support"
STORED_PREFIX = "stored-"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
PERSON_REPLIES = "person_replies"  # meta key: the replies (0: the first) a person wrote
# A message asking for a person whose other sentences have at most this many words asks nothing
# new ("That does not answer my question. Can I talk to a human?") when a question is waiting.
ONLY_ASKING_WORDS = 12


@dataclass
class Learned:
    """The stored conversations worth learning from, and how many answers of each kind they hold."""

    conversations: list[Conversation]
    agent_answers: int = 0
    good_replies: int = 0
    looked_at: int = 0


def stored_id(conversation_id: int) -> str:
    return f"{STORED_PREFIX}{conversation_id}"


def learned_conversations(store: Any, since: datetime | None = None, until: datetime | None = None) -> Learned:
    """Every stored support conversation (started in [since, until)) that holds an answer worth learning."""
    from datetime import timezone

    start = since or datetime(1970, 1, 1, tzinfo=timezone.utc)
    end = until or datetime.now(timezone.utc)
    activity = store.activity(APP, start, end, replies=True)
    by_conv: dict[int, list[Any]] = {}
    for m in activity.messages:
        by_conv.setdefault(m.conversation_id, []).append(m)
    out = Learned([], looked_at=len(activity.conversations))
    for conv in activity.conversations:
        turns, people, good = _turns(by_conv.get(conv.id, []), activity.ratings)
        if any(t.role == "assistant" for t in turns):
            # Which replies a person wrote: the gate measures the bot against people's answers,
            # not against replies the active model wrote itself.
            out.conversations.append(Conversation(stored_id(conv.id), turns, source=f"database conversation {conv.id}",
                                                  meta={"stored": True, PERSON_REPLIES: people}))
            out.agent_answers += len(people)
            out.good_replies += good
    return out


def _turns(messages: list[Any], ratings: dict[int, int]) -> tuple[list[Turn], list[int], int]:
    """The turns to learn, which of their replies a person wrote (0: the first reply), and how
    many bot replies rated good they hold."""
    turns: list[Turn] = []
    pending: list[str] = []  # the customer's messages waiting for an answer
    answered = False  # the bot replied to them (unrated): a new question starts afresh
    people: list[int] = []
    good = 0
    for m in messages:
        if m.status not in ("ok", "stopped"):
            continue
        if m.role == "user":
            text = m.content
            if asks_for_human(text):
                # What a person answers is the question, not the request for a person: the bot
                # hands every request for a person over, so it could never learn from one.
                text = " ".join(s for s in _SENTENCE_END.split(text.strip()) if not asks_for_human(s))
                if not text or (pending and len(text.split()) <= ONLY_ASKING_WORDS):
                    continue  # "that's wrong, a human please": the question is still the one before
            if answered:
                pending, answered = [], False
            pending.append(text)
        elif m.role == "assistant" and m.author is not None:  # a person's answer
            text = m.content.strip()
            if not text:
                continue
            if pending:
                people.append(sum(t.role == "assistant" for t in turns))
                turns += [Turn("user", "\n".join(pending)), Turn("assistant", text)]
            elif turns and turns[-1].role == "assistant":  # a second message of the same answer
                turns[-1] = Turn("assistant", f"{turns[-1].text}\n{text}")
            pending, answered = [], False
        elif m.role == "assistant" and m.model_name is not None:  # the bot's reply
            rating = ratings.get(m.id)
            if rating == 1 and pending:
                turns += [Turn("user", "\n".join(pending)), Turn("assistant", m.content)]
                good += 1
                pending, answered = [], False
            elif rating is None:
                answered = True
        else:  # a template notice (handoff, waiting): the question still waits for a person
            answered = False
    return turns, people, good
