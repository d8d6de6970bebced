"""Write apps/support/data/sample_history.csv: a fictitious support history for the README demo.

The store ("Northwind Goods"), its policies, order numbers (like 482130), emails and phone numbers are all
made up. Each intent has many customer phrasings (some casual, some with typos) and a few
consistent agent replies, so a tiny model trained for minutes can learn the mapping. Every row
names its conversation's intent (an ``intent`` column, as helpdesk exports name a ticket's
category); the bot then groups past replies by intent, which routes new wordings to the right
kind of answer far more often than clusters of the replies do (dev/LOG.md).

Run from the repository root: ``python scripts/make_sample_history.py``. The output depends
only on SEED, so re-running it reproduces the committed file byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

SEED = 20240607
N_CONVERSATIONS = 500
MULTI_FRACTION = 0.4
OUT = Path(__file__).resolve().parent.parent / "apps" / "support" / "data" / "sample_history.csv"

STORE = "Northwind Goods"
ITEMS = [
    "ceramic mug set", "wireless headphones", "wool throw blanket", "running shoes", "desk lamp",
    "cast iron skillet", "hiking backpack", "coffee grinder", "linen bedsheets", "phone case",
]
EMAILS = ["jane.doe@example.com", "sam.lee@example.net", "m.garcia@example.org", "tom_b@example.com"]
PHONES = ["555-0142", "(555) 013-2297", "555 019 4410"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

# Each intent: customer openers (no order number / with {order}), agent replies, and for the
# multi-turn version the agent's question and the customer's answer. Replies stay concrete and
# consistent (same policy numbers every time) so the model has one thing to learn per intent.
INTENTS: dict[str, dict[str, list[str]]] = {
    "order_status": {
        "ask": [
            "Where is my order?", "hi, can you tell me where my package is?", "I want to track my order",
            "how do I check the status of my order", "has my order shipped yet?", "any update on my delivery?",
            "when will my stuff arrive", "Can you check on my order please", "wheres my order",
            "I placed an order last week and haven't heard anything",
            "what's happening with my purchase?",
            "is my {item} on the way?",
            "did my order go out yet",
            "can you give me a tracking number",
            "how long until my order gets here",
            "I'm waiting for my {item}, any news?",
            "status of my purchase please",
        ],
        "ask_order": [
            "Where is order {order}?", "can you check the status of order {order}", "order {order} - has it shipped?",
            "Hi, I'd like to track my order {order}.", "any news on order #{order}?", "when will order {order} arrive?",
            "is order {order} on its way?",
            "tracking number for order {order}?",
        ],
        "reply_order": [
            "Order {order} shipped on {day} and is on its way. You can follow it with the tracking link in your "
            "shipping email; standard delivery takes 3-5 business days.",
            "Good news: order {order} left our warehouse on {day}. The tracking link is in your shipping "
            "confirmation email, and it should arrive within 3-5 business days.",
        ],
        "reply": [
            "You can track any order under Account > Orders on our website, or with the tracking link in your "
            "shipping email. If you send me your order number, I can check it for you.",
            "Happy to help! Open Account > Orders to see the status and tracking link of each order. If you "
            "share your order number I can look it up right now.",
        ],
        "clarify": [
            "I can check that for you. What is your order number? It's in your confirmation email.",
            "Sure! Could you give me your order number? You'll find it in the confirmation email we sent.",
        ],
        "answer": ["It's {order}", "order number is {order}", "{order}", "sure, {order}", "it's #{order} i think"],
    },
    "cancel_order": {
        "ask": [
            "I want to cancel my order", "how can I cancel an order?", "Please cancel my order",
            "i changed my mind, can i cancel?", "I need to cancel a purchase", "cancel my order pls",
            "Is it too late to cancel my order?", "can u cancel the order i just made",
            "please stop my order",
            "I don't want the {item} anymore, can you cancel it",
            "I ordered by accident, please call it off",
            "can I still stop my purchase before it ships?",
            "I made a mistake with my order and want to cancel it",
            "scrap my order please",
            "cancel the {item} I bought yesterday",
            "I no longer need my order",
        ],
        "ask_order": [
            "Please cancel order {order}.", "I'd like to cancel order {order}", "can you cancel #{order}?",
            "cancel order {order} please, I ordered by mistake", "need to cancel {order} asap",
            "stop order {order} before it ships",
            "please call off order {order}",
        ],
        "reply_order": [
            "Done: order {order} is cancelled and you'll get a confirmation email shortly. The refund goes back "
            "to your original payment method within 5-7 business days.",
            "I've cancelled order {order}. A confirmation email is on its way, and your refund will reach your "
            "original payment method within 5-7 business days.",
        ],
        "reply": [
            "Orders can be cancelled until they ship, usually within 24 hours. Go to Account > Orders, choose "
            "the order and click Cancel order, or send me the order number and I'll do it for you.",
            "You can cancel an order before it ships: open Account > Orders, pick the order and click Cancel "
            "order. If you give me the order number, I can cancel it for you.",
        ],
        "clarify": [
            "I can cancel it for you if it hasn't shipped yet. What is the order number?",
            "Of course. Which order would you like to cancel? Please send me the order number.",
        ],
        "answer": ["{order}", "it's order {order}", "the number is {order}", "{order}, the {item}"],
    },
    "change_order": {
        "ask": [
            "Can I change my order?", "I need to change the shipping address on my order",
            "i ordered the wrong size, can i change it?", "how do I add an item to my order",
            "can I change the color of the {item} I ordered", "wrong address on my order!!",
            "I put the wrong address on my order",
            "can I swap the {item} for a different one?",
            "I want a different size",
            "can I edit my order",
            "I need to modify my purchase",
            "forgot to add something to my order",
            "it hasn't shipped yet, can I pick another colour?",
        ],
        "ask_order": [
            "Can I change the address for order {order}?", "I want to change an item in order {order}",
            "please update the delivery address on order {order}", "order {order}: wrong size, can you fix it?",
        ],
        "reply_order": [
            "Order {order} hasn't shipped yet, so I can still change it. Please tell me the new address or item "
            "and I'll update the order and send you a new confirmation.",
            "I can update order {order} because it hasn't left the warehouse. What should I change: the address, "
            "the size or the item?",
        ],
        "reply": [
            "You can change the items or the shipping address until the order ships. Send me the order number "
            "and what you'd like to change, and I'll update it.",
            "Changes are possible until an order ships. Tell me the order number and the change (address, size "
            "or item) and I'll take care of it.",
        ],
        "clarify": [
            "I can help with that. What is the order number, and what would you like to change?",
            "Sure. Please send me the order number and the change you need.",
        ],
        "answer": [
            "{order}, the new address is 12 Elm Street, Springfield", "order {order}, I need a medium instead of large",
            "{order} - please swap the {item} for the black one", "it's {order}, wrong street number",
        ],
        "reply_info": [
            "Done: I've updated order {order} and emailed you a new confirmation. It will ship within 24 hours.",
            "All set! Order {order} is updated and a new confirmation is in your inbox.",
        ],
    },
    "refund": {
        "ask": [
            "I want a refund", "How do I get my money back?", "when will I get my refund?",
            "my refund hasn't arrived", "can i get a refund for the {item}", "refund status please",
            "I returned an item 2 weeks ago and still no refund", "how long do refunds take",
            "I'd like my money back",
            "can I be reimbursed for the {item}",
            "still waiting on my money",
            "when does the money go back to my card",
            "I haven't been credited yet",
            "where's my refund",
            "please refund me for the {item}",
            "you owe me a refund",
        ],
        "ask_order": [
            "I'd like a refund for order {order}.", "where is my refund for order {order}?",
            "refund for {order} please, the {item} was damaged", "Has the refund for order {order} been processed?",
        ],
        "reply_order": [
            "The refund for order {order} was issued on {day}. It takes 5-7 business days to appear on your "
            "statement, depending on your bank.",
            "I can see the refund for order {order}: it was processed on {day}, so it should reach your original "
            "payment method within 5-7 business days.",
        ],
        "reply": [
            "Refunds go back to your original payment method within 5-7 business days after we receive the "
            "returned item. If it has been longer, send me your order number and I'll check.",
            "Once we receive your return we refund the original payment method; it shows up within 5-7 business "
            "days. Share your order number and I'll check where yours is.",
        ],
        "clarify": [
            "Let me check that for you. What is your order number?",
            "I'm sorry for the wait. Could you send me the order number so I can look up the refund?",
        ],
        "answer": ["{order}", "order {order}", "it was order {order}", "{order}, the {item}"],
    },
    "return": {
        "ask": [
            "How do I return an item?", "I want to return the {item}", "what is your return policy?",
            "can I send this back?", "the {item} doesn't fit, how do i return it", "do you do free returns?",
            "I need a return label", "how many days do I have to return something",
            "I'd like to send the {item} back",
            "can I return something I bought",
            "the {item} isn't what I expected, can I send it back?",
            "how do I ship an item back to you",
            "I don't like the {item}, can I return it",
            "is there a fee to return stuff",
            "how do returns work",
            "I bought the {item} and want to give it back",
        ],
        "ask_order": [
            "I'd like to return the {item} from order {order}.", "how do I return order {order}?",
            "need a return label for order {order}", "returning {order}, what do I do?",
        ],
        "reply_order": [
            "I've emailed you a prepaid return label for order {order}. Pack the item, attach the label and drop "
            "it at any post office within 30 days; we refund you within 5-7 business days after it arrives.",
            "A free return label for order {order} is on its way to your inbox. Send the item back within 30 "
            "days and we'll refund it within 5-7 business days of receiving it.",
        ],
        "reply": [
            "You can return any item within 30 days of delivery, free of charge. Go to Account > Orders, choose "
            "the order and click Return item to get a prepaid label.",
            "Returns are free within 30 days of delivery. Open Account > Orders, pick the order and select "
            "Return item; we'll email you a prepaid label.",
        ],
        "clarify": [
            "Happy to help with the return. What is the order number?",
            "Sure! Which order is the item from? Please send me the order number.",
        ],
        "answer": ["{order}", "order {order}", "it's {order}", "{order}, it's the {item}"],
    },
    "delivery_problem": {
        "ask": [
            "My package is late", "my order still hasn't arrived", "the tracking says delivered but I don't have it",
            "package missing!!", "it's been 10 days and no delivery", "my parcel was supposed to come yesterday",
            "tracking hasnt updated in a week", "I think my package got lost",
            "my delivery never showed up",
            "the courier says delivered but it's not here",
            "still waiting for my parcel",
            "my {item} should have arrived days ago",
            "the package didn't come",
            "nothing arrived yet and it's been two weeks",
            "where is my parcel, it's overdue",
        ],
        "ask_order": [
            "Order {order} is late, where is it?", "tracking for {order} says delivered but nothing here",
            "order {order} never arrived", "my package for order {order} is missing",
        ],
        "reply_order": [
            "I'm sorry order {order} hasn't reached you. Please check with neighbours and any safe place; if it "
            "doesn't turn up within 24 hours, I'll open a claim with the carrier and send a free replacement.",
            "Sorry about that! The carrier shows order {order} as delayed. If it hasn't arrived in 2 business "
            "days, reply here and we'll send a replacement or a full refund, whichever you prefer.",
        ],
        "reply": [
            "I'm sorry your package is late. Please send me the order number so I can check with the carrier; if "
            "it's lost we send a free replacement or a full refund.",
            "Sorry for the trouble! Share your order number and I'll look into it. If a parcel is lost, we "
            "replace it for free or refund it in full.",
        ],
        "clarify": [
            "I'm sorry about that. What is the order number? I'll check with the carrier.",
            "Sorry to hear it! Could you give me the order number so I can look into the delivery?",
        ],
        "answer": ["{order}", "order {order}", "it's {order}", "the order number is {order}"],
    },
    "shipping_options": {
        "ask": [
            "What shipping options do you have?", "how much is shipping?", "do you offer express delivery",
            "is shipping free?", "how long does delivery take", "do you ship internationally?",
            "can I get next day delivery", "shipping costs?",
            "how fast can you deliver",
            "what does delivery cost",
            "do you deliver to Canada?",
            "is there a faster shipping option",
            "what are the delivery fees",
            "how much for express",
            "do you have free delivery",
            "can you ship to Europe",
        ],
        "reply": [
            "Standard shipping takes 3-5 business days and is free on orders over $50 (otherwise $4.95). Express "
            "shipping takes 1-2 business days for $9.95. We ship to the US and Canada.",
            "We offer standard shipping (3-5 business days, free over $50, else $4.95) and express shipping (1-2 "
            "business days, $9.95). We currently deliver to the US and Canada.",
        ],
    },
    "account_access": {
        "ask": [
            "I forgot my password", "I can't log in to my account", "how do I reset my password?",
            "my password isn't working", "locked out of my account", "cant sign in help",
            "I never got the password reset email", "login not working",
            "I can't get into my account",
            "reset link never came",
            "my login doesn't work anymore",
            "can't remember my password",
            "it says wrong password",
            "I'm locked out",
            "help me sign in",
        ],
        "reply": [
            "Click Forgot password on the sign-in page and enter your account email; we'll send a reset link that "
            "works for 30 minutes. If it doesn't arrive, check your spam folder.",
            "You can reset it from the sign-in page: choose Forgot password and enter your email. The reset link "
            "is valid for 30 minutes; check spam if you don't see it.",
        ],
        "clarify": [
            "I can help you get back in. What email address is on your account?",
            "Sorry about that! Which email address did you sign up with?",
        ],
        "answer": ["it's {email}", "{email}", "I used {email}", "my email is {email}"],
        "reply_info": [
            "Thanks! I've sent a password reset link to that address. It works for 30 minutes; check your spam "
            "folder if you don't see it.",
            "Done: a reset link is on its way to your inbox and is valid for 30 minutes. Let me know if it "
            "doesn't arrive.",
        ],
    },
    "update_account": {
        "ask": [
            "How do I change my email address?", "I need to update my phone number",
            "can I change my address in my account",
            "how do i update my details", "I moved, how do I change my address?", "change the name on my account",
            "I got a new phone number, how do I update it",
            "I need to change the email on my profile",
            "how do I edit the saved address in my account",
            "my name is spelled wrong on my account",
            "update my contact info",
        ],
        "reply": [
            "Sign in and open Account > Profile; there you can edit your name, email, phone number and saved "
            "addresses. Changes are saved right away.",
            "You can update your details under Account > Profile: name, email, phone and addresses. Just edit the "
            "field and click Save.",
        ],
        "clarify": [
            "I can update it for you. What should the new details be?",
            "Sure. What would you like me to change it to?",
        ],
        "answer": [
            "my new number is {phone}", "please use {email}", "new email: {email}", "change it to {phone} please",
        ],
        "reply_info": [
            "Done! Your account now has the new details, and we've sent a confirmation to your email.",
            "All set: I've updated your account and emailed you a confirmation of the change.",
        ],
    },
    "delete_account": {
        "ask": [
            "How do I delete my account?", "please close my account", "I want you to delete all my data",
            "remove my account", "can i deactivate my account", "delete my account and my info pls",
            "I want to close my account for good",
            "please erase my personal information",
            "how can I get rid of my account",
            "I don't want an account with you anymore",
            "wipe my data please",
        ],
        "reply": [
            "You can delete your account under Account > Privacy > Delete account. Your data is erased within 30 "
            "days; open orders and refunds are completed first.",
            "Go to Account > Privacy and choose Delete account. We erase your personal data within 30 days, after "
            "any open orders are finished.",
        ],
    },
    "payment_methods": {
        "ask": [
            "What payment methods do you accept?", "can I pay with PayPal?", "do you take Amex",
            "can i use a gift card", "is there a buy now pay later option?", "which cards do you accept",
            "do you accept Mastercard?",
            "can I pay by credit card",
            "what cards can I use",
            "is PayPal an option",
            "do you take Visa",
            "how can I pay",
            "can I pay with a voucher",
        ],
        "reply": [
            "We accept Visa, Mastercard, American Express, PayPal and {store} gift cards. You choose the payment "
            "method at checkout.",
            "You can pay with Visa, Mastercard, American Express, PayPal or a {store} gift card; pick one at "
            "checkout.",
        ],
    },
    "payment_problem": {
        "ask": [
            "My payment failed", "why was my card declined?", "I was charged twice!", "checkout keeps failing",
            "double charge on my card", "payment not going through", "you took money twice for one order",
            "I got billed twice",
            "my card was charged two times",
            "the payment keeps getting rejected",
            "my card won't go through at checkout",
            "there's a duplicate charge on my statement",
            "why did my payment fail?",
            "I see two payments for one order",
            "error when I try to pay",
        ],
        "ask_order": [
            "I was charged twice for order {order}", "payment failed for order {order}",
            "why do I see two charges for order {order}?",
        ],
        "reply_order": [
            "I've checked order {order}: there is one charge and one pending authorization. The authorization "
            "drops off by itself within 3-5 business days, so you'll only pay once.",
        ],
        "reply": [
            "If a payment fails, check that the billing address matches your card and that the card hasn't "
            "expired, then try again or use another method. A second charge you see is usually a pending "
            "authorization that disappears within 3-5 business days.",
            "Declined payments are mostly a billing address mismatch or an expired card; please check both or try "
            "PayPal. Double charges are usually a pending authorization that drops off within 3-5 business days.",
        ],
        "clarify": [
            "Sorry about that. What is the order number? I'll check the payment.",
            "Let me look into it. Could you send me the order number?",
        ],
        "answer": ["{order}", "order {order}", "it's {order}"],
    },
    "invoice": {
        "ask": [
            "Can I get an invoice?", "I need a receipt for my order", "where do I find my invoice",
            "need an invoice with my company name", "how do I download a receipt", "send me the invoice pls",
            "can you email me a receipt",
            "I need a bill for my purchase for my accounting",
            "where can I download my receipt",
            "I need a VAT invoice",
            "proof of purchase please",
        ],
        "ask_order": ["Can you send me the invoice for order {order}?", "I need a receipt for order {order}"],
        "reply_order": [
            "I've emailed you the invoice for order {order}. You can also download it any time under Account > "
            "Orders > Download invoice.",
        ],
        "reply": [
            "Invoices are under Account > Orders: choose the order and click Download invoice. To add a company "
            "name or VAT number, edit your billing details before downloading.",
            "Open Account > Orders, pick the order and click Download invoice. You can add a company name in your "
            "billing details first.",
        ],
    },
    "complaint": {
        "ask": [
            "This is the worst service ever", "I'm really unhappy with my order", "the {item} arrived broken",
            "I want to make a complaint", "your product is terrible", "very disappointed, the {item} stopped working",
            "this is ridiculous, nobody answers my emails",
            "the {item} came damaged",
            "really bad experience with your store",
            "the {item} is faulty",
            "I'm not happy at all",
            "the quality of the {item} is awful",
            "I'm fed up, nobody helps me",
        ],
        "reply": [
            "I'm sorry, that's not the experience we want you to have. Please tell me your order number and what "
            "happened, and I'll make it right with a replacement or a full refund.",
            "I'm really sorry about this. Share your order number and a few details, and I'll arrange a "
            "replacement or a refund straight away.",
        ],
        "clarify": [
            "I'm sorry to hear that. Could you tell me the order number and what went wrong?",
            "That's not good enough, and I'm sorry. What is the order number, and what happened?",
        ],
        "answer": [
            "{order}, the {item} was cracked", "order {order}. it stopped working after 2 days",
            "{order} - it came damaged", "order {order}, wrong item and nobody replied",
        ],
        "reply_info": [
            "Thank you, and sorry again. I've arranged a free replacement for order {order}; it ships today and "
            "you don't need to return the damaged item.",
            "Thanks for the details. I've issued a full refund for order {order}; it reaches your payment method "
            "within 5-7 business days.",
        ],
    },
    "human_agent": {
        "ask": [
            "I want to talk to a human", "can I speak to a real person?", "agent please", "connect me to support staff",
            "is there a phone number I can call", "I need to talk to someone",
            "let me speak to a person",
            "can I talk to someone from your team",
            "transfer me to a human please",
            "I don't want a bot",
            "real person please",
            "how can I call you",
        ],
        "reply": [
            "Of course. I'm passing you to a member of our support team; the usual wait is under 5 minutes. You "
            "can also call us Monday to Friday, 8am to 8pm.",
            "Sure, I'm connecting you with a person from our team now; it usually takes less than 5 minutes. Our "
            "phone line is open Monday to Friday, 8am to 8pm.",
        ],
    },
    "thanks": {
        "ask": [
            "thanks!", "thank you so much", "great, thanks for the help", "ok thx", "perfect, bye", "that's all, thanks",
            "cheers",
            "thanks, that helped",
            "awesome, thank you",
            "great, that's everything",
            "ok thanks bye",
        ],
        "reply": [
            "You're welcome! Have a great day.",
            "Glad I could help! Have a great day.",
            "My pleasure. If you need anything else, just write to us.",
        ],
    },
}
GREETINGS = ["", "", "", "Hi, ", "Hello, ", "hey ", "Good morning, "]
MULTI_INTENTS = [k for k, v in INTENTS.items() if "clarify" in v]


def noisy(text: str, rng: random.Random) -> str:
    """Make a customer message casual sometimes: lower case, no final punctuation, one typo."""
    roll = rng.random()
    if roll < 0.2:
        text = text.lower().rstrip(".?!")
    elif roll < 0.3:
        words = text.split()
        long = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
        if long:
            i = rng.choice(long)
            j = rng.randrange(1, len(words[i]) - 2)
            w = words[i]
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]  # swap two letters
            text = " ".join(words)
    return text


def fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots)


class Decks:
    """Draw customer openers without replacement, reshuffling a list once it is used up.

    Every phrasing then appears in the history (random draws left a fifth of them out), which is
    what the demo's retrieval needs: a wording that never appears cannot be matched.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.left: dict[int, list[str]] = {}

    def draw(self, templates: list[str]) -> str:
        left = self.left.get(id(templates))
        if not left:
            left = self.left[id(templates)] = self.rng.sample(templates, len(templates))
        return left.pop()


def conversation(rng: random.Random, multi: bool, decks: Decks) -> tuple[str, list[tuple[str, str]]]:
    """One conversation: its intent and its (role, text) turns."""
    # Order numbers have 6 digits so curation replaces them everywhere, also when a customer
    # answers with the bare number (a 5-digit number could be a zip code and is left alone).
    slots = {
        "order": str(rng.randint(100000, 999999)), "item": rng.choice(ITEMS), "email": rng.choice(EMAILS),
        "phone": rng.choice(PHONES), "day": rng.choice(DAYS), "store": STORE,
    }
    name = rng.choice(MULTI_INTENTS if multi else list(INTENTS))
    spec = INTENTS[name]
    greet = rng.choice(GREETINGS)

    def opener(templates: list[str]) -> str:
        text = fill(decks.draw(templates), slots)
        first = text.split()[0]
        keep_case = first == "I" or first.startswith("I'")
        return noisy(greet + (text if keep_case or not greet else text[0].lower() + text[1:]), rng)

    if not multi:
        if "ask_order" in spec and rng.random() < 0.45:
            return name, [("customer", opener(spec["ask_order"])),
                          ("agent", fill(rng.choice(spec["reply_order"]), slots))]
        return name, [("customer", opener(spec["ask"])), ("agent", fill(rng.choice(spec["reply"]), slots))]

    # Multi-turn: the agent asks for what it needs, the customer gives it, the agent resolves.
    turns = [("customer", opener(spec["ask"])), ("agent", fill(rng.choice(spec["clarify"]), slots))]
    turns.append(("customer", noisy(fill(rng.choice(spec["answer"]), slots), rng)))
    final = spec.get("reply_info") or spec["reply_order"]
    turns.append(("agent", fill(rng.choice(final), slots)))
    if rng.random() < 0.5:  # many real chats end with a thank-you
        turns.append(("customer", noisy(rng.choice(INTENTS["thanks"]["ask"]), rng)))
        turns.append(("agent", rng.choice(INTENTS["thanks"]["reply"])))
    return name, turns


def generate(n: int = N_CONVERSATIONS, seed: int = SEED) -> list[tuple[str, str, str, str]]:
    """All rows (conversation_id, role, text, intent) of the sample history."""
    rng = random.Random(seed)
    n_multi = round(n * MULTI_FRACTION)
    kinds = [True] * n_multi + [False] * (n - n_multi)
    rng.shuffle(kinds)
    rows = []
    decks = Decks(rng)
    for i, multi in enumerate(kinds, start=1):
        intent, turns = conversation(rng, multi, decks)
        for role, text in turns:
            rows.append((f"c{i:04d}", role, text, intent))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["conversation_id", "role", "text", "intent"])
        writer.writerows(generate())
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
