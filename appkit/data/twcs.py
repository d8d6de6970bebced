"""The "Customer Support on Twitter" (twcs) export: one tweet per row, threads through reply ids.

A thread is a root tweet (one that replies to nothing in the file) and every tweet that replies
to it, directly or not. Tweets are put in reply order: depth first, siblings by time, so a
linear chain reads top to bottom. ``inbound`` tweets are the customer, the others the company.
"""

from __future__ import annotations

import html
import re

from appkit.data.report import ReadReport
from appkit.data.shapes import find_column, make_turns, order_key
from appkit.data.tables import Table, cell
from appkit.data.types import Conversation

REQUIRED = ("tweet_id", "inbound", "text", "in_response_to_tweet_id")
# Mentions that address the thread ("@AppleSupport @1234 ...") say nothing about the problem.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w+[:,]?)+\s*")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}

NO_COMPANY_REPLY = "thread without a company reply"
NO_CUSTOMER_TWEET = "thread without a customer tweet"


def detect_twcs(table: Table) -> bool:
    """True when the columns are those of the twcs export."""
    return all(find_column(table.columns, [c]) for c in REQUIRED)


def clean_tweet(text: str) -> str:
    """Tweet text without the leading @mentions and with HTML entities (&amp;) decoded."""
    return _LEADING_MENTIONS.sub("", html.unescape(text)).strip()


def _tweet_id(value: str) -> str:
    value = value.strip()
    # Spreadsheet round trips turn integer ids into floats ("119239.0").
    return value[:-2] if value.endswith(".0") and value[:-2].isdigit() else value


def read_twcs(table: Table, report: ReadReport) -> list[Conversation]:
    """Build one conversation per thread; threads the company never answered are counted, not kept."""
    col = {c: find_column(table.columns, [c]) for c in (*REQUIRED, "author_id", "created_at")}
    report.columns = {k: v for k, v in col.items() if v}

    tweets: dict[str, tuple[int, dict[str, str]]] = {}
    inbound: dict[str, bool] = {}
    for loc, row in table.records:
        tid = _tweet_id(cell(row.get(col["tweet_id"])))
        flag = cell(row.get(col["inbound"])).strip().lower()
        if not tid:
            report.drop("tweet without a tweet_id", table.source(loc))
        elif tid in tweets:
            report.drop("repeated tweet_id", table.source(loc))
        elif flag not in _TRUE | _FALSE:
            report.drop("inbound is neither True nor False", table.source(loc))
        else:
            tweets[tid] = (loc, row)
            inbound[tid] = flag in _TRUE

    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for tid, (_, row) in tweets.items():
        parent = _tweet_id(cell(row.get(col["in_response_to_tweet_id"])))
        if parent and parent in tweets and parent != tid:
            children.setdefault(parent, []).append(tid)
        else:
            roots.append(tid)

    def when(tid: str) -> tuple[float, int]:
        loc, row = tweets[tid]
        t = order_key(cell(row.get(col["created_at"]))) if col["created_at"] else None
        return (t if t is not None else float("inf"), loc)

    placed: set[str] = set()
    out: list[Conversation] = []
    for root in roots:
        thread: list[str] = []
        stack = [root]
        while stack:  # depth first, iterative: a long chain must not hit the recursion limit
            tid = stack.pop()
            if tid in placed:
                continue
            placed.add(tid)
            thread.append(tid)
            stack.extend(sorted(children.get(tid, []), key=when, reverse=True))
        conv = _conversation(table, report, tweets, inbound, thread, col["text"] or "text", col["author_id"])
        if conv is not None:
            out.append(conv)
    if len(placed) < len(tweets):
        first = min(tweets[t][0] for t in tweets if t not in placed)
        report.drop("tweet in a reply cycle", table.source(first), len(tweets) - len(placed))
    return out


def _conversation(
    table: Table,
    report: ReadReport,
    tweets: dict[str, tuple[int, dict[str, str]]],
    inbound: dict[str, bool],
    thread: list[str],
    text_col: str,
    author_col: str | None,
) -> Conversation | None:
    root_loc = tweets[thread[0]][0]
    turns = make_turns(
        ("user" if inbound[t] else "assistant", clean_tweet(cell(tweets[t][1].get(text_col)))) for t in thread
    )
    roles = {t.role for t in turns}
    where = table.source(root_loc)
    if "assistant" not in roles:
        report.drop(NO_COMPANY_REPLY, where)
        return None
    if "user" not in roles:
        report.drop(NO_CUSTOMER_TWEET, where)
        return None
    meta: dict[str, object] = {"tweets": len(thread)}
    if author_col:
        company = next((cell(tweets[t][1].get(author_col)) for t in thread if not inbound[t]), "")
        if company:
            meta["company"] = company
    return Conversation(thread[0], turns, where, meta)
