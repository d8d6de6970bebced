"""Replies never show a raw placeholder: filled from the conversation or settings, or rephrased."""

from __future__ import annotations

import re

import pytest

from appkit.data.pii import PLACEHOLDERS, scrub_pii
from appkit.prompts import Prompts
from apps.support.placeholders import RAW, Known, PlaceholderStream, fill_placeholders, slot_kind


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts()


# One agent reply per placeholder kind that curation writes, and the Bitext slots seen most.
CURATION_REPLIES = {
    "order_id": "I checked order [ORDER_ID] and it left our warehouse today.",
    "email": "I have sent the reset link to [EMAIL].",
    "phone": "You can call us on [PHONE] any day.",
    "card": "The refund goes back to the card [CARD] within 5 days.",
    "url": "You can follow the parcel at [URL].",
}
BITEXT_REPLIES = [
    "I understand you want to cancel order number {{Order Number}}. Log into our {{Website Name}} "
    "and open {{Order History}}.",
    "Call {{Customer Support Phone Number}} or use {{Live Chat}}; we are there {{Customer Support Hours}}.",
    "Locate the purchase associated with the ID {{Purchase ID Anonymized}} and press {{Cancel Order}}.",
    "Write to {{Customer Support Email}} with invoice number {{Invoice Number Anonymized}}.",
]


def test_curation_writes_exactly_the_kinds_the_replies_cover():
    assert set(PLACEHOLDERS) == set(CURATION_REPLIES)


@pytest.mark.parametrize("kind", sorted(CURATION_REPLIES))
def test_no_curation_placeholder_survives_without_any_value(prompts: Prompts, kind: str):
    out = fill_placeholders(CURATION_REPLIES[kind], Known(), prompts).text
    assert not RAW.search(out), out
    assert PLACEHOLDERS[kind] not in out


@pytest.mark.parametrize("reply", BITEXT_REPLIES)
def test_no_bitext_slot_survives(prompts: Prompts, reply: str):
    out = fill_placeholders(reply, Known(), prompts).text
    assert "{{" not in out and "}}" not in out, out


def test_the_order_number_the_customer_typed_fills_the_reply(prompts: Prompts):
    known = Known.gather(["Hi, my order 48213 has not arrived"])
    out = fill_placeholders("I checked order [ORDER_ID] for you.", known, prompts)
    assert out.text == "I checked order 48213 for you."
    assert out.filled == ["order_id"] and not out.asked
    bitext = fill_placeholders(BITEXT_REPLIES[0], known, prompts).text
    assert "order number 48213" in bitext


def test_a_missing_order_number_is_asked_for_and_the_sentence_still_reads(prompts: Prompts):
    out = fill_placeholders(BITEXT_REPLIES[0], Known(), prompts)
    assert out.asked == ["order_id"]
    assert "cancel your order." in out.text
    assert out.text.rstrip().endswith("order number?")
    assert "our website" in out.text and "Order History" in out.text


def test_company_facts_fill_their_slots(prompts: Prompts):
    known = Known.gather([], facts={"support_phone": "0800 123 456", "website": "shop.example.com"})
    out = fill_placeholders(BITEXT_REPLIES[1], known, prompts).text
    assert out.startswith("Call 0800 123 456 or use live chat")
    site = fill_placeholders("Log into our {{Website Name}}.", known, prompts).text
    assert site == "Log into our shop.example.com."


def test_a_card_number_is_never_put_back(prompts: Prompts):
    known = Known.gather(["charge it to 4111 1111 1111 1111 please"])
    out = fill_placeholders(CURATION_REPLIES["card"], known, prompts).text
    assert "4111" not in out and "your card" in out


def test_slot_kinds_from_names():
    assert slot_kind("Order Number Anonymized") == "order_id"
    assert slot_kind("Purchase ID Anonymized") == "order_id"
    assert slot_kind("Customer Support Phone Number") == "support_phone"
    assert slot_kind("Website Name") == "website"
    assert slot_kind("Order History") == "label"
    assert slot_kind("ORDER_ID") == "order_id"


def test_a_cut_short_slot_from_generation_is_removed(prompts: Prompts):
    out = fill_placeholders("Please check {{Order Numb", Known(), prompts).text
    assert not RAW.search(out)


@pytest.mark.parametrize("known", [Known.gather(["order #55120 please"]), Known()])
def test_streamed_text_is_filled_like_the_whole(prompts: Prompts, known: Known):
    for reply in [*BITEXT_REPLIES, *CURATION_REPLIES.values(), "Order [ORDER_ID] shipped. Order [ORDER_ID] is late."]:
        pieces = re.findall(r"\S+\s*|\s+", reply)  # word by word, as a model streams
        streamed = "".join(PlaceholderStream(iter(pieces), known, prompts))
        assert streamed.strip() == fill_placeholders(reply, known, prompts).text, reply
        assert not RAW.search(streamed)


def test_scrub_reports_the_values_it_removed():
    values: list[tuple[str, str]] = []
    text, _ = scrub_pii("order #48213, mail a.b@example.com", values=values)
    assert "[ORDER_ID]" in text and "[EMAIL]" in text
    assert values == [("email", "a.b@example.com"), ("order_id", "48213")]


def test_streaming_holds_back_only_a_few_words(prompts: Prompts):
    words = [f"word{i} " for i in range(40)]
    consumed = 0

    def source():
        nonlocal consumed
        for w in words:
            consumed += 1
            yield w

    stream = iter(PlaceholderStream(source(), Known(), prompts))
    first = next(stream)
    assert first.startswith("word0") and consumed <= PlaceholderStream.HOLD_WORDS + 1


def test_a_streamed_slot_keeps_the_word_before_it(prompts: Prompts):
    reply = "Please log into your account on our {{Website Name}} and open the Order History section now."
    pieces = re.findall(r"\S+\s*", reply)
    streamed = "".join(PlaceholderStream(iter(pieces), Known(), prompts))
    assert "on our website and" in streamed and "our our" not in streamed


@pytest.mark.parametrize(("reply", "expected"), [
    ("1. Visit our website, {{Website Name}}.", "1. Visit our website."),
    ("Enter the order number [ORDER_ID] in the designated field.", "Enter your order number in the designated field."),
    ("Please provide {{Order Number}} so I can check.", "Please provide your order number so I can check."),
    ("Kindly provide me with your {{Order Number}}.", "Kindly provide me with your order number."),
    ("I checked the order number [ORDER_ID] for you.", "I checked your order for you."),
    ("Order [ORDER_ID] shipped on Monday.", "Your order shipped on Monday."),  # a sentence starts with a capital
    ("Thanks. Order [ORDER_ID] is cancelled.", "Thanks. Your order is cancelled."),
])
def test_a_rephrased_slot_reads_as_a_sentence(prompts: Prompts, reply: str, expected: str):
    assert fill_placeholders(reply, Known(), prompts, ask=False).text == expected


def test_a_past_confirmation_is_not_shown_to_a_customer_who_has_not_named_the_order(prompts: Prompts):
    from apps.support.grounding import Candidate
    from apps.support.replies import _answerable

    done = Candidate("Done: order [ORDER_ID] is cancelled.", "case", case=0, group=1, score=0.9)
    ask = Candidate("Which order would you like to cancel? Please send me the order number.", "case",
                    case=1, group=1, score=0.5)
    other = Candidate("Returns are free within 30 days.", "case", case=2, group=2, score=0.7)
    assert _answerable([done, other, ask], Known(), prompts) is ask  # the same kind of answer, asking
    assert _answerable([done, other, ask], Known.gather(["cancel order 482133"]), prompts) is done
    assert _answerable([done, other], Known(), prompts) is done  # nothing else of its kind: ask after it


def test_a_customer_who_has_not_named_the_order_gets_the_question_of_that_kind(prompts: Prompts):
    """The closest past replies confirmed an action on an order that customer had named; the
    answer of the same kind that asks for it is further away in the history, and is the one shown."""
    from apps.support.cases import Case, CaseIndex
    from apps.support.grounding import Grounder
    from apps.support.replies import Replier

    ask = "I'm sorry to hear that. Could you tell me the order number and what went wrong?"
    index = CaseIndex([
        Case("the quality of your products is awful", ask, "c1", intent="complaint"),
        Case("[ORDER_ID], the lamp inside the box arrived cracked",
             "Thank you. I've arranged a free replacement for order [ORDER_ID].", "c1", ask, "complaint"),
        Case("[ORDER_ID], the vase inside the box arrived cracked",
             "Thanks. I've issued a full refund for order [ORDER_ID].", "c2", ask, "complaint"),
        Case("where is my parcel", "It is on its way: send me the order number and I'll check.", "c3",
             intent="order_status"),
    ])
    index.group_replies()
    replier = Replier(None, prompts, Grounder(index, per_group=2))  # type: ignore[arg-type]  # retrieval alone

    def reply(message: str) -> str:
        draft = replier.draft([{"role": "user", "content": message}], [], "grounded")
        return "".join(draft.pieces)

    assert reply("the lamp inside the box arrived cracked") == ask
    assert reply("order 482133: the lamp inside the box arrived cracked") == (
        "Thank you. I've arranged a free replacement for order 482133.")
