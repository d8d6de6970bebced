"""The support store bench/report.py times `appkit report` on: generated, then written in bulk or
through the Store API.

What is generated (bench/report.py's docstring says why): conversations over the last
``PERIOD_DAYS`` days as the support bot writes them, customers' messages drawn from Bitext's
requests, two models with a promotion and a canary, ratings, handoffs, agents' replies,
moderation events, and ``NEW_INTENTS`` growing over the month. ``expected`` gives every count
the report must find; ``observed`` reads them back from a report.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA  # bench/ is on sys.path when a script runs

APP = "support"
DATA_FILE = "Bitext_Sample_Customer_Support_Training_Dataset.csv"
PERIOD_DAYS = 30
MODELS = ("support-v3", "support-v4")
PROMOTED_DAY = 18  # days into the period when v4 replaced v3 (v3 keeps a canary share after)
CANARY = 0.15
SENTIMENT_MODEL = "sentiment-sst2-blend"
# Intents the model never saw (not in the reference): their share grows over the month.
NEW_INTENTS = ("newsletter_subscription", "check_cancellation_fee", "set_up_shipping_address")
CHUNK = 5000  # rows per bulk insert statement

POSITIVE = ["thanks, that worked", "great, thank you!", "perfect, thanks a lot", "ok got it, thanks",
            "that's exactly what I needed", "awesome, all sorted now", "thank you so much for the quick help",
            "brilliant, it works now", "cheers, that fixed it", "super helpful, thanks"]
NEUTRAL = ["ok", "and how long does that take?", "where do I find that option?", "is there a fee for that?",
           "can you send me the link?", "what do I need to provide?", "I'm on the mobile app, does that matter?",
           "it's for my other account", "do I need the order number?", "one more question", "what are the next steps?",
           "is it the same for international orders?", "can I do it from the website?", "hmm, let me check"]
NEGATIVE = ["that didn't help at all", "this is useless", "still not working", "you already told me that",
            "I've tried that three times", "this is ridiculous, nothing works", "why is this so complicated",
            "I'm really annoyed now", "that's not what I asked", "terrible service honestly"]
AFTER_HANDOFF = ["any update?", "hello? is anyone there", "I'm still waiting", "ok, I'll wait",
                 "thanks, looking forward to hearing back", "can someone please answer",
                 "here is my order number 43129876", "my email is jane.doe@example.com"]
ASK_HUMAN = ["can I talk to a human please", "I want to speak to a real person", "agent please",
             "get me a human agent", "let me talk to someone from support"]
TOXIC = ["this is a damn joke, you idiots", "you stupid bot", "what the hell is wrong with you people"]
AGENT_REPLIES = ["Hi, I'm taking over from the assistant. I've checked your account and fixed it; you should see the "
                 "change within the hour.", "Sorry for the wait. I've opened a ticket and emailed you the details.",
                 "Thanks for your patience: the refund has been issued and should reach you in 3-5 working days.",
                 "I've updated the address on your order. Anything else I can do?",
                 "The cancellation fee has been waived this time. You'll get a confirmation email.",
                 "I've unsubscribed you from the newsletter; it can take 48 hours to stop completely.",
                 "Could you confirm the email address on the account so I can look it up?"]
AGENTS = ("agent", "agent:maria", "agent:tom", "agent:li")
COMMENTS = ["very quick", "did not answer my question", "helpful", "wrong information", "too long", "exactly right"]
PREFIXES = ["", "", "", "hi, ", "hello ", "hey, ", "good morning, ", "hi there! ", "excuse me, "]
SUFFIXES = ["", "", "", "", " please", " thanks", "?", " asap", " thank you", "!!", " quickly please"]


def read_bitext(path: Path) -> list[dict[str, str]]:
    """Bitext's rows (instruction, intent, response); exits with code 2 when the file is missing."""
    path = path / DATA_FILE if path.is_dir() else path
    if not path.is_file():
        print(f"error: Bitext support data not found at {path}; pass --data PATH (the CSV or its folder; "
              f"default {DEFAULT_DATA}).", file=sys.stderr)
        sys.exit(2)
    with path.open(encoding="utf-8", newline="") as f:
        rows = [{"instruction": r["instruction"].strip(), "intent": r["intent"], "response": r["response"].strip()}
                for r in csv.DictReader(f) if r.get("instruction", "").strip()]
    if not rows:
        print(f"error: {path} has no rows with an instruction column.", file=sys.stderr)
        sys.exit(2)
    return rows


def bitext_reference(rows: list[dict[str, str]], seed: int = 0) -> Any:
    """What a model trained on Bitext minus NEW_INTENTS saw: 90% training (with intents), 10% held out.

    A real history holds the customers' follow-ups too ("thanks, that worked"): they are added
    without an intent, as support_reference gives messages of conversations that named none.
    """
    from appkit.insights.reference import Reference

    rng = random.Random(seed)
    known = [(r["instruction"], r["intent"]) for r in rows if r["intent"] not in NEW_INTENTS]
    follow_ups = [(rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)).strip()
                  for text in [*POSITIVE, *NEUTRAL, *NEGATIVE, *AFTER_HANDOFF] for _ in range(6)]
    known += [(text, None) for text in follow_ups]
    rng.shuffle(known)
    cut = int(len(known) * 0.9)
    intents = len({label for _, label in known if label})
    labels: list[Any] = [label for _, label in known[:cut]]  # None: a message of a conversation without an intent
    return Reference("support-v4", [t for t, _ in known[:cut]], labels, [t for t, _ in known[cut:]],
                     f"model support-v4 (bench): {cut:,} training messages, {intents} Bitext intents")


# --- the generated history -----------------------------------------------------------------------------------


@dataclass
class History:
    """Rows per table (ids from 1, every column given) and, per conversation, the Store calls that wrote them."""

    now: datetime
    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # (kind, row or value) in the order the bot did them: conversation, message, rename, event, status, feedback
    actions: list[list[tuple[str, Any]]] = field(default_factory=list)

    @property
    def since(self) -> datetime:
        return self.now - timedelta(days=PERIOD_DAYS)


def _template_version(name: str) -> str:
    from appkit.resources import shipped_dir

    return hashlib.sha256((shipped_dir("prompts") / name).read_bytes()).hexdigest()[:12]


class Generator:
    """Simulates the support bot's writes, one conversation at a time (seeded)."""

    def __init__(self, rows: list[dict[str, str]], seed: int = 0, now: datetime | None = None) -> None:
        from appkit.prompts import Prompts
        from appkit.safety.lexicon import LABELS, Lexicon

        self.rng = random.Random(seed)
        self.by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
        for r in rows:
            self.by_intent[r["intent"]].append(r)
        self.intents = sorted(self.by_intent)
        self.known = [i for i in self.intents if i not in NEW_INTENTS]
        self.new = [i for i in self.intents if i in NEW_INTENTS]
        self.labels = LABELS
        self.safety_backend = Lexicon.builtin().name
        prompts = Prompts()
        self.notices = {reason: prompts.render("support/handoff.j2", reason=reason)
                        for reason in ("asked_for_human", "low_confidence", "sentiment_drop", "safety")}
        self.waiting = prompts.render("support/waiting.j2")
        self.blocked = prompts.render("safety/blocked.j2", direction="input", app=APP)
        self.system = ("support/system.j2", _template_version("support/system.j2"))
        self.now = (now or datetime.now(timezone.utc)).replace(microsecond=0)

    def history(self, messages: int, turns: float = 8.0) -> History:
        """Exactly ``messages`` messages, in conversations of ``turns`` customer messages on average.

        Conversations are drawn one after another (the last one stops at the total), then numbered
        in the order they started, as the database would have numbered them.
        """
        h = History(self.now)
        while len(h.messages) < messages:
            count = min(60, 1 + int(self.rng.expovariate(1 / max(turns - 1, 0.01))))
            self._conversation(h, self._start(), count, messages - len(h.messages))
        _renumber(h)
        return h

    def _start(self) -> datetime:
        """When a conversation started: 3% before the period, else busier on weekdays, daytime and later days."""
        rng = self.rng
        if rng.random() < 0.03:
            return self.now - timedelta(days=rng.uniform(PERIOD_DAYS + 1, PERIOD_DAYS + 15))
        while True:
            back = rng.uniform(0.02, PERIOD_DAYS - 0.05)
            moment = self.now - timedelta(days=back)
            weight = (0.55 if moment.weekday() >= 5 else 1.0) * (0.3 + math.sin(math.pi * moment.hour / 24) ** 2)
            weight *= 0.8 + 0.4 * (PERIOD_DAYS - back) / PERIOD_DAYS  # traffic grows over the month
            if rng.random() < weight / 1.3:
                return moment

    def _intent(self, start: datetime) -> str:
        progress = min(1.0, max(0.0, 1 - (self.now - start).total_seconds() / (PERIOD_DAYS * 86400)))
        if self.new and self.rng.random() < 0.03 + 0.17 * progress:  # 3% at the start of the month, 20% at its end
            return self.rng.choice(self.new)
        return self.rng.choice(self.known)

    def _text(self, intent: str) -> str:
        text = self.rng.choice(self.by_intent[intent])["instruction"]
        return (self.rng.choice(PREFIXES) + text + self.rng.choice(SUFFIXES)).strip()

    def _sentiment(self, score: float) -> dict[str, Any]:
        score = max(-1.0, min(1.0, score))
        pos, neg = max(0.0, score) * 0.9 + 0.05, max(0.0, -score) * 0.9 + 0.05
        neu = max(0.0, 1 - pos - neg)
        label = "positive" if score > 0.25 else "negative" if score < -0.25 else "neutral"
        return {"label": label, "score": round(score, 4),
                "probabilities": {"negative": round(neg, 4), "neutral": round(neu, 4), "positive": round(pos, 4)},
                "model": SENTIMENT_MODEL}

    def _decision(self, direction: str, action: str, scores: dict[str, float]) -> dict[str, Any]:
        fired = [k for k, v in scores.items() if v >= 0.5]
        reason = "; ".join(f"{k} {v:.2f} >= 0.50: {action}" for k, v in scores.items() if v >= 0.5)
        return {"action": action, "direction": direction, "backend": self.safety_backend, "scores": scores,
                "labels": fired, "reason": reason or "below every threshold",
                "elapsed_ms": round(self.rng.uniform(0.05, 0.6), 2)}

    def _scores(self, toxic: bool) -> dict[str, float]:
        rng = self.rng
        if not toxic:
            return {label: (round(rng.uniform(0.0, 0.08), 4) if rng.random() < 0.1 else 0.0) for label in self.labels}
        top = rng.choice(("insult", "obscene", "toxicity"))
        scores = {label: round(rng.uniform(0.0, 0.3), 4) for label in self.labels}
        scores[top] = round(rng.uniform(0.7, 0.98), 4)
        scores["toxicity"] = max(scores["toxicity"], round(scores[top] - rng.uniform(0.0, 0.1), 4))
        return scores

    def _conversation(self, h: History, start: datetime, turns: int, budget: int) -> None:
        """One conversation as the bot writes it, with at most ``budget`` messages."""
        rng = self.rng
        cid = len(h.conversations) + 1
        conv = {"id": cid, "app": APP, "title": None, "status": "open",
                "external_user_id": f"cust-{rng.randrange(1, 40_000):05d}" if rng.random() < 0.8 else None,
                "created_at": start, "updated_at": start}
        h.conversations.append(conv)
        actions: list[tuple[str, Any]] = [("conversation", conv)]
        h.actions.append(actions)
        clock = [start]

        def tick(lo: float, hi: float) -> datetime:
            clock[0] = min(clock[0] + timedelta(seconds=rng.uniform(lo, hi)), self.now - timedelta(seconds=1))
            return clock[0]

        def message(role: str, content: str, **values: Any) -> dict[str, Any]:
            row = {"id": len(h.messages) + 1, "conversation_id": cid, "seq": seq[0] + 1, "role": role,
                   "content": content, "model_name": None, "template_name": None, "template_version": None,
                   "latency_ms": None, "prompt_tokens": None, "completion_tokens": None, "moderation": None,
                   "sentiment": None, "grounding": None, "author": None, "status": "ok", "error": None,
                   "created_at": values.pop("at", None) or tick(1, 5)}
            row.update(values)
            seq[0] += 1
            h.messages.append(row)
            conv["updated_at"] = row["created_at"]
            actions.append(("message", row))
            return row

        def event(direction: str, backend: str, action: str, scores: dict[str, Any], message_id: int,
                  at: datetime) -> None:
            row = {"id": len(h.events) + 1, "message_id": message_id, "conversation_id": cid, "app": APP,
                   "direction": direction, "backend": backend, "scores": scores, "action": action, "created_at": at}
            h.events.append(row)
            actions.append(("event", row))

        def status(value: str, at: datetime) -> None:
            conv["status"], conv["updated_at"] = value, at
            actions.append(("status", value))

        def rate(message_id: int, rating: int, at: datetime) -> None:
            row = {"id": len(h.feedback) + 1, "message_id": message_id, "rating": rating,
                   "comment": rng.choice(COMMENTS) if rng.random() < 0.2 else None, "created_at": at}
            h.feedback.append(row)
            actions.append(("feedback", row))

        def handoff(reason: str, message_id: int, direction: str, grounding: dict[str, Any] | None = None) -> None:
            at = tick(0.2, 1.5)
            status("escalated", at)
            event(direction, f"handoff:{reason}", "escalate", {}, message_id, at)
            notice = self.notices[reason]
            message("assistant", notice.text, template_name=notice.name, template_version=notice.version,
                    grounding=grounding, at=at)

        def agent_reply() -> None:
            message("assistant", rng.choice(AGENT_REPLIES), author=rng.choice(AGENTS), at=tick(60, 3 * 3600))

        seq = [0]
        intent = self._intent(start)
        new = intent in self.new
        promoted = (self.now - start).days <= PERIOD_DAYS - PROMOTED_DAY
        model = MODELS[1] if promoted and rng.random() >= CANARY else MODELS[0]
        better = model == MODELS[1]
        mood = {"complaint": -0.5, "payment_issue": -0.3, "review": 0.2}.get(intent, 0.0) + rng.gauss(0, 0.25)
        previous: float | None = None
        escalated = False
        limit = len(h.messages) + budget  # the history's last message
        for turn in range(turns):
            room = limit - len(h.messages)
            if room <= 0 or (escalated and rng.random() < 0.35):  # waiting customers give up
                break
            if room < 4:  # a turn may write 4 messages: the history ends on messages not answered yet
                for _ in range(room):
                    scores = self._scores(False)
                    user = message("user", rng.choice(NEUTRAL), moderation=self._decision("input", "allow", scores),
                                   sentiment=self._sentiment(rng.gauss(0.05, 0.2)), at=tick(15, 300))
                    event("input", self.safety_backend, "allow", scores, user["id"], user["created_at"])
                break
            # What the customer writes.
            r = rng.random()
            if escalated:
                text, score = rng.choice(AFTER_HANDOFF), rng.gauss(-0.1, 0.3)
            elif turn == 0:
                if intent == "contact_human_agent" and rng.random() < 0.5:
                    text = rng.choice(ASK_HUMAN)
                else:
                    text = self._text(intent)
                score = mood
            elif r < 0.3:
                text, score = self._text(intent), mood + rng.gauss(0, 0.2)
            elif r < 0.45:
                intent = self._intent(start)
                new = intent in self.new
                text, score = self._text(intent), rng.gauss(0.0, 0.25)
            elif r < 0.72:
                text, score = rng.choice(NEUTRAL), rng.gauss(0.05, 0.2)
            elif r < 0.92:
                text, score = rng.choice(POSITIVE), rng.uniform(0.3, 0.85)
            elif r < 0.993:
                text, score = rng.choice(NEGATIVE), rng.uniform(-0.75, -0.25)
            else:
                text, score = rng.choice(ASK_HUMAN), rng.gauss(-0.2, 0.2)
            toxic = rng.random() < 0.008
            if toxic:
                text, score = rng.choice(TOXIC), rng.uniform(-0.9, -0.4)
            scores = self._scores(toxic)
            action = "allow"
            if toxic:
                action = rng.choices(("flag", "block", "escalate"), (0.7, 0.22, 0.08))[0]
            sentiment = self._sentiment(score)
            user = message("user", text, moderation=self._decision("input", action, scores), sentiment=sentiment,
                           at=tick(15, 300) if turn else tick(0.5, 3))
            event("input", self.safety_backend, action, scores, user["id"], user["created_at"])
            if turn == 0:
                line = " ".join(text.split())
                conv["title"] = line if len(line) <= 60 else line[:59].rstrip() + "…"
                actions.append(("rename", conv["title"]))
            dropped = previous is not None and previous - sentiment["score"] >= 1.0
            previous = sentiment["score"]
            if escalated:  # a person owns the conversation: the bot only acknowledges
                message("assistant", self.waiting.text, template_name=self.waiting.name,
                        template_version=self.waiting.version, at=tick(0.2, 1))
                if rng.random() < 0.6:
                    agent_reply()
                continue
            reason = "asked_for_human" if text in ASK_HUMAN else ""
            if action == "escalate":
                reason = "safety"
            if not reason and dropped:
                reason = "sentiment_drop"
            if reason:
                handoff(reason, user["id"], "input")
                escalated = True
                if rng.random() < 0.85:
                    agent_reply()
                continue
            if action == "block":
                message("assistant", self.blocked.text, moderation=self._decision("input", "block", scores),
                        status="blocked", template_name="safety/blocked.j2", at=tick(0.1, 0.5))
                continue
            grounding = self._grounding(new)
            if rng.random() < (0.12 if new else 0.01):  # no past reply fits: a person answers
                handoff("low_confidence", user["id"], "output", grounding)
                escalated = True
                if rng.random() < 0.85:
                    agent_reply()
                continue
            # The bot's reply.
            latency = int(rng.lognormvariate(math.log(420 if better else 610), 0.45))
            outcome = rng.choices(("ok", "stopped", "error"), (0.99, 0.006, 0.004))[0]
            reply_text = rng.choice(self.by_intent[intent])["response"]
            at = user["created_at"] + timedelta(milliseconds=latency)
            clock[0] = max(clock[0], min(at, self.now - timedelta(seconds=1)))
            if outcome == "error":
                message("assistant", "", status="error", error="the reply failed: generation timed out after 30 s",
                        model_name=model, template_name=self.system[0], template_version=self.system[1], at=clock[0])
                continue
            out_scores = self._scores(False)
            out_action = "mask" if rng.random() < 0.003 else "allow"
            if out_action == "mask":
                out_scores["obscene"] = round(rng.uniform(0.6, 0.9), 4)
            if outcome == "stopped":
                reply_text = reply_text[: rng.randrange(10, max(11, len(reply_text) // 2))]
            completion = max(1, len(reply_text) // 4)
            reply = message("assistant", reply_text, status=outcome, model_name=model,
                            moderation=self._decision("output", out_action, out_scores),
                            template_name=self.system[0], template_version=self.system[1], grounding=grounding,
                            latency_ms=latency, prompt_tokens=rng.randrange(180, 900), completion_tokens=completion,
                            at=clock[0])
            event("output", self.safety_backend, out_action, out_scores, reply["id"], reply["created_at"])
            if outcome == "ok" and rng.random() < (0.03 if new else 0.004):  # the model's own reply scored low
                handoff("low_confidence", reply["id"], "output")
                escalated = True
                if rng.random() < 0.85:
                    agent_reply()
                continue
            if rng.random() < 0.12:
                good = 0.45 if new else (0.86 if better else 0.78)
                rating = 1 if rng.random() < good else -1
                rate(reply["id"], rating, tick(5, 120))
                if rng.random() < 0.03:  # changed their mind: the latest rating counts
                    rate(reply["id"], -rating, tick(30, 600))
        # How the conversation ended.
        end = tick(60, 1800)
        r = rng.random()
        if escalated:
            if r < 0.5:
                status("closed", end)
        elif r < 0.68:
            status("closed", end)
        elif r < 0.71:
            status("archived", end)

    def _grounding(self, new: bool) -> dict[str, Any]:
        rng = self.rng
        score = rng.uniform(0.05, 0.5) if new else rng.uniform(0.45, 0.97)
        case = rng.randrange(0, 4000)
        candidates = [{"text": "I understand how important it is...", "source": "case", "case": case + i,
                       "conversation_id": f"bitext-{case + i}", "group": rng.randrange(0, 42),
                       "similarity": round(rng.uniform(0.2, 0.95), 4), "route": round(rng.uniform(0, 1), 4),
                       "agreement": round(rng.uniform(0, 1), 4), "echo": round(rng.uniform(0, 1), 4), "pmi": None,
                       "score": round(score * (1 - 0.1 * i), 4)} for i in range(3)]
        return {"mode": "grounded", "source": "case", "case": case, "case_conversation": f"bitext-{case}",
                "case_customer": "how can I ...", "score": round(score, 4), "candidates": candidates,
                "generated_logprob": round(rng.uniform(-2.5, -0.3), 4)}


def _renumber(h: History) -> None:
    """Ids in the order conversations started (and, within one, the order things happened)."""
    order = sorted(range(len(h.conversations)), key=lambda i: (h.conversations[i]["created_at"], i))
    h.conversations = [h.conversations[i] for i in order]
    h.actions = [h.actions[i] for i in order]
    new_conv = {c["id"]: n for n, c in enumerate(h.conversations, 1)}
    for c in h.conversations:
        c["id"] = new_conv[c["id"]]
    for m in h.messages:
        m["conversation_id"] = new_conv[m["conversation_id"]]
    h.messages.sort(key=lambda m: (m["conversation_id"], m["id"]))
    new_msg = {}
    for n, m in enumerate(h.messages, 1):
        new_msg[m["id"]], m["id"] = n, n
    conv_of = {m["id"]: m["conversation_id"] for m in h.messages}
    for e in h.events:
        e["conversation_id"], e["message_id"] = new_conv[e["conversation_id"]], new_msg[e["message_id"]]
    for f in h.feedback:
        f["message_id"] = new_msg[f["message_id"]]
    h.events.sort(key=lambda e: (e["conversation_id"], e["id"]))
    h.feedback.sort(key=lambda f: (conv_of[f["message_id"]], f["id"]))
    for table in (h.events, h.feedback):
        for n, r in enumerate(table, 1):
            r["id"] = n


def expected(h: History) -> dict[str, Any]:
    """What the report must say about the period, counted from the rows (independently of appkit.insights)."""
    convs = {c["id"]: c for c in h.conversations if c["created_at"] >= h.since}
    messages = [m for m in h.messages if m["conversation_id"] in convs]
    bot = {m["id"]: m for m in messages if m["role"] == "assistant" and m["author"] is None and m["model_name"]}
    first_model: dict[int, str] = {}
    for m in bot.values():
        first_model.setdefault(m["conversation_id"], m["model_name"])
    handoffs: dict[int, str] = {}
    safety: Counter[tuple[str, str, str]] = Counter()
    for e in h.events:
        if e["conversation_id"] not in convs or e["action"] == "allow":
            continue
        if e["backend"].startswith("handoff:"):
            handoffs.setdefault(e["conversation_id"], e["backend"][len("handoff:"):])
        else:
            numeric = {k: v for k, v in e["scores"].items() if isinstance(v, (int, float))}
            safety[(e["direction"], e["action"], max(numeric, key=numeric.__getitem__) if numeric else "-")] += 1
    outcomes: Counter[str] = Counter()
    for c in convs.values():
        outcomes["handed_over" if c["id"] in handoffs or c["status"] == "escalated"
                 else "resolved" if c["status"] in ("closed", "archived") else "open"] += 1
    ratings = {f["message_id"]: f["rating"] for f in h.feedback if f["message_id"] in bot}  # by id: latest wins
    return {"conversations": len(convs), "customer_messages": sum(m["role"] == "user" for m in messages),
            "bot_replies": len(bot), "agent_replies": sum(m["author"] is not None for m in messages),
            "resolved": outcomes["resolved"], "handed_over": outcomes["handed_over"], "open": outcomes["open"],
            "rated": len(ratings), "positive": sum(r > 0 for r in ratings.values()),
            "handoff_reasons": dict(Counter(handoffs.values())),
            "safety": {f"{d}/{a}/{label}": n for (d, a, label), n in sorted(safety.items())},
            "models": dict(sorted(Counter(first_model.get(c, "(no reply)") for c in convs).items()))}


def observed(report: Any) -> dict[str, Any]:
    """The same figures as ``expected``, read from a report."""
    u = report.usage
    return {"conversations": u.conversations, "customer_messages": u.customer_messages, "bot_replies": u.bot_replies,
            "agent_replies": u.agent_replies, "resolved": u.total.resolved, "handed_over": u.total.handed_over,
            "open": u.total.open, "rated": u.total.rated, "positive": u.total.positive,
            "handoff_reasons": dict(u.handoff_reasons),
            "safety": {f"{d}/{a}/{label}": n for d, a, label, n in sorted(u.safety)},
            "models": dict(sorted((m.model, m.conversations) for m in u.models))}


# --- writing it -----------------------------------------------------------------------------------------------


def write_bulk(store: Any, h: History) -> None:
    """Every row in bulk through the ORM tables' column types (one transaction); the store must be empty."""
    from sqlalchemy import func, insert, select, text

    from appkit.store.models import Conversation, Feedback, Message, ModerationEvent

    tables = ((Conversation, h.conversations), (Message, h.messages), (Feedback, h.feedback),
              (ModerationEvent, h.events))
    with store.engine.begin() as conn:
        for model, rows in tables:
            if conn.execute(select(func.count()).select_from(model)).scalar():
                raise SystemExit(f"error: table {model.__tablename__} of {store.url} is not empty; "
                                 "the generator writes into an empty store.")
        for model, rows in tables:
            for i in range(0, len(rows), CHUNK):
                conn.execute(insert(model.__table__), rows[i:i + CHUNK])
        if conn.dialect.name == "postgresql":  # the ids were given: move the sequences past them
            for model, rows in tables:
                if rows:
                    name = model.__tablename__
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), :n)"), {"n": len(rows)})


def write_with_store_api(store: Any, h: History) -> None:
    """The same history through the Store's own methods (as the bot calls them), then backdated to its times."""
    from sqlalchemy import bindparam, update

    from appkit.store.models import Conversation, Feedback, Message, ModerationEvent

    ids: dict[str, dict[int, int]] = {"conversation": {}, "message": {}, "event": {}, "feedback": {}}
    for actions in h.actions:
        conv_id = 0
        for kind, row in actions:
            if kind == "conversation":
                conv_id = store.create_conversation(APP, user=row["external_user_id"]).id
                ids["conversation"][row["id"]] = conv_id
            elif kind == "message":
                fields = {k: row[k] for k in ("model_name", "template_name", "template_version", "latency_ms",
                                              "prompt_tokens", "completion_tokens", "moderation", "sentiment",
                                              "grounding", "status", "error") if row[k] is not None}
                if row["author"] is not None:
                    ids["message"][row["id"]] = store.agent_reply(conv_id, row["content"], author=row["author"]).id
                else:
                    ids["message"][row["id"]] = store.append_message(conv_id, row["role"], row["content"],
                                                                     **fields).id
            elif kind == "rename":
                store.rename(conv_id, row)
            elif kind == "status":
                store.set_status(conv_id, row)
            elif kind == "event":
                ids["event"][row["id"]] = store.record_moderation(
                    row["app"], row["direction"], row["backend"], row["action"], row["scores"],
                    message_id=ids["message"][row["message_id"]], conversation_id=conv_id).id
            elif kind == "feedback":
                ids["feedback"][row["id"]] = store.add_feedback(ids["message"][row["message_id"]], row["rating"],
                                                                row["comment"]).id
    # The Store stamps "now": move every row to the time the history gives it.
    with store.engine.begin() as conn:
        for model, kind, rows, columns in (
                (Conversation, "conversation", h.conversations, ("created_at", "updated_at")),
                (Message, "message", h.messages, ("created_at",)),
                (ModerationEvent, "event", h.events, ("created_at",)),
                (Feedback, "feedback", h.feedback, ("created_at",))):
            statement = (update(model.__table__).where(model.__table__.c.id == bindparam("row_id"))
                         .values({c: bindparam(f"new_{c}") for c in columns}))
            params = [{"row_id": ids[kind][r["id"]], **{f"new_{c}": r[c] for c in columns}} for r in rows]
            if params:
                conn.execute(statement, params)
