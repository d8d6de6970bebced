"""The Twitter customer-support export: threads from reply chains."""

from __future__ import annotations

import json

import pytest

from appkit.data import Turn, read_history, read_history_with_report
from appkit.data.twcs import clean_tweet

COLUMNS = ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]


def tweet(tid, author, inbound, when, text, responses="", parent=""):
    return dict(zip(COLUMNS, [tid, author, inbound, f"Wed Oct 11 {when} +0000 2017", text, responses, parent]))


# Rows deliberately out of order, as in the real export.
ROWS = [
    # thread 1: customer -> company -> customer -> company, rows shuffled
    tweet("3", "NorthwindCares", "False", "10:05:00", "@c1 Sorry! What's the order number?", "4", "2"),
    tweet("2", "c1", "True", "10:00:00", "@NorthwindCares my package is late &amp; nobody answers", "3", ""),
    tweet("5", "NorthwindCares", "False", "10:20:00", "@c1 Thanks, it arrives tomorrow ^AB", "", "4"),
    tweet("4", "c1", "True", "10:10:00", "@NorthwindCares @other it's 48213", "5", "3"),
    # thread 2: a customer tweet nobody from the company answered
    tweet("10", "c2", "True", "11:00:00", "@NorthwindCares hello??", "", ""),
    # thread 3: a reply to a tweet that is not in the file is a root; a branch with two replies
    tweet("20", "c3", "True", "12:00:00", "@NorthwindCares @c9 same problem here", "21,22", "999"),
    tweet("22", "c4", "True", "12:02:00", "@c3 me too", "", "20"),
    tweet("21", "NorthwindCares", "False", "12:05:00", "@c3 We're on it.", "", "20"),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_threads_follow_reply_chains(write, fmt):
    convs, report = read_history_with_report(write(f"twcs.{fmt}", ROWS))
    assert report.shape == "twcs"
    assert [c.id for c in convs] == ["2", "20"]
    assert convs[0].turns == [
        Turn("user", "my package is late & nobody answers"),
        Turn("assistant", "Sorry! What's the order number?"),
        Turn("user", "it's 48213"),
        Turn("assistant", "Thanks, it arrives tomorrow ^AB"),
    ]
    assert convs[0].meta == {"tweets": 4, "company": "NorthwindCares"}
    assert convs[0].source.endswith(":3" if fmt == "csv" else ":2")  # the root tweet's line
    # Siblings by time: the other customer's "me too" (12:02) comes before the company's reply (12:05).
    assert convs[1].turns == [Turn("user", "same problem here\nme too"), Turn("assistant", "We're on it.")]
    assert report.dropped == {"thread without a company reply": 1}
    assert report.examples["thread without a company reply"].endswith(":6" if fmt == "csv" else ":5")


def test_json_booleans_and_float_ids(write):
    rows = [
        {"tweet_id": 1, "author_id": "c", "inbound": True, "created_at": "", "text": "help", "in_response_to_tweet_id": None},
        {"tweet_id": 2, "author_id": "Co", "inbound": False, "created_at": "", "text": "ok", "in_response_to_tweet_id": "1.0"},
    ]
    convs = read_history(write("t.json", rows))
    assert [t.role for t in convs[0].turns] == ["user", "assistant"]


def test_reply_cycles_are_counted_not_looped(write):
    rows = [
        tweet("1", "c", "True", "10:00:00", "@Co a", "", "3"),
        tweet("2", "Co", "False", "10:01:00", "@c b", "", "1"),
        tweet("3", "c", "True", "10:02:00", "@Co c", "", "2"),
        tweet("7", "c", "True", "10:00:00", "@Co hi", "", ""),
        tweet("8", "Co", "False", "10:01:00", "@c hello", "", "7"),
    ]
    convs, report = read_history_with_report(write("cycle.csv", rows))
    assert [c.id for c in convs] == ["7"]
    assert report.dropped == {"tweet in a reply cycle": 3}


def test_bad_inbound_values_are_counted(write):
    rows = ROWS[:4] + [tweet("30", "x", "maybe", "10:00:00", "?", "", "")]
    _, report = read_history_with_report(write("t.csv", rows))
    assert report.dropped["inbound is neither True nor False"] == 1


def test_clean_tweet():
    assert clean_tweet("@AppleSupport @12345, my phone &gt; broken @you") == "my phone > broken @you"
    assert clean_tweet("@only @mentions") == ""


def test_twcs_shape_can_be_forced_and_checked(write):
    path = write("t.csv", ROWS)
    assert read_history_with_report(path, shape="twcs")[1].shape == "twcs"
    json.dumps(read_history_with_report(path)[1].as_dict())
