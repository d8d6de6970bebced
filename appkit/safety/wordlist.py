"""appkit's own curated toxicity lexicon: terms and phrase patterns with a label and a severity.

Content warning: this module lists slurs and profanity, because a filter has to name what it
filters. It is written for English customer-support traffic: a curse from an angry customer is
mild (flag), a slur or a threat is severe (escalate). Severities are the score a single hit
gives its label (0..1); several hits combine as a noisy-or in ``lexicon.py``.

``TERMS``: (term, label, severity, inflect). ``inflect`` says which suffixes the term takes:
"*" the common ones (fuck -> fucking, fucker, fucks), "s" the plural only (where a longer form
is an innocent word: spic -> spicy, prick -> pricked), "" none. Never prefixes: "Scunthorpe",
"assassin", "cocktail" and "therapist" stay clean because matching is per whole word.
``PATTERNS``: (regex, label, severity) over the normalised text (lower-case, accents and
leetspeak undone), for what a single word cannot say: threats, "you are a ...", group attacks.
"""

from __future__ import annotations

OBSCENE, INSULT, THREAT, IDENTITY = "obscene", "insult", "threat", "identity_attack"

TERMS: tuple[tuple[str, str, float, str], ...] = (
    # --- profanity: masked in bot output, flagged in customer input
    ("fuck", OBSCENE, 0.9, "*"), ("fuk", OBSCENE, 0.85, "*"), ("fck", OBSCENE, 0.85, "*"),
    ("phuck", OBSCENE, 0.85, "*"), ("fucktard", INSULT, 0.95, "*"), ("fuckwit", INSULT, 0.9, "*"),
    ("fuckface", INSULT, 0.9, "*"), ("motherfucker", INSULT, 0.95, "*"), ("mofo", INSULT, 0.7, "*"),
    ("clusterfuck", OBSCENE, 0.7, "*"), ("wtf", OBSCENE, 0.55, ""), ("stfu", INSULT, 0.75, ""),
    ("gtfo", INSULT, 0.7, ""), ("omfg", OBSCENE, 0.4, ""), ("effing", OBSCENE, 0.45, ""),
    ("shit", OBSCENE, 0.8, "*"), ("bullshit", OBSCENE, 0.75, "*"), ("horseshit", OBSCENE, 0.75, "*"),
    ("apeshit", OBSCENE, 0.7, ""), ("shithead", INSULT, 0.9, "*"), ("dipshit", INSULT, 0.9, "*"),
    ("shitty", OBSCENE, 0.7, ""), ("crap", OBSCENE, 0.35, "s"), ("crappy", OBSCENE, 0.35, ""),
    ("damn", OBSCENE, 0.3, "s"), ("goddamn", OBSCENE, 0.4, "*"), ("dammit", OBSCENE, 0.3, ""),
    ("piss", OBSCENE, 0.5, "s"), ("pissed", OBSCENE, 0.3, ""), ("bloody", OBSCENE, 0.1, ""),
    ("cock", OBSCENE, 0.7, ""), ("cocks", OBSCENE, 0.7, ""), ("cocksucker", INSULT, 0.95, "*"),
    ("dick", OBSCENE, 0.6, ""), ("dicks", OBSCENE, 0.6, ""), ("dickhead", INSULT, 0.9, "*"),
    ("pussy", OBSCENE, 0.75, ""), ("pussies", OBSCENE, 0.75, ""), ("tits", OBSCENE, 0.6, ""),
    ("titties", OBSCENE, 0.65, ""), ("boobs", OBSCENE, 0.4, ""), ("arse", OBSCENE, 0.5, ""),
    ("ass", OBSCENE, 0.6, ""), ("asses", OBSCENE, 0.6, ""), ("asshole", INSULT, 0.9, "*"),
    ("arsehole", INSULT, 0.9, "*"), ("asshat", INSULT, 0.85, "*"), ("asswipe", INSULT, 0.85, "*"),
    ("dumbass", INSULT, 0.85, "*"), ("jackass", INSULT, 0.75, "*"), ("smartass", INSULT, 0.6, "*"),
    ("fatass", INSULT, 0.8, "*"), ("badass", OBSCENE, 0.25, ""), ("bollocks", OBSCENE, 0.5, ""),
    ("bugger", OBSCENE, 0.4, "s"), ("wank", OBSCENE, 0.7, "s"), ("wanker", INSULT, 0.85, "*"),
    ("jizz", OBSCENE, 0.8, ""), ("cum", OBSCENE, 0.45, ""), ("dildo", OBSCENE, 0.7, "s"),
    ("porn", OBSCENE, 0.55, ""), ("porno", OBSCENE, 0.6, ""), ("blowjob", OBSCENE, 0.9, "*"),
    ("handjob", OBSCENE, 0.85, "*"), ("cunt", INSULT, 0.97, "*"), ("twat", INSULT, 0.85, "s"),
    ("prick", INSULT, 0.75, "s"), ("bastard", INSULT, 0.8, "s"), ("bitch", INSULT, 0.85, "*"),
    ("bitchy", INSULT, 0.7, ""), ("sonofabitch", INSULT, 0.9, ""),
    # --- insults
    ("idiot", INSULT, 0.75, "s"), ("idiotic", INSULT, 0.5, ""), ("moron", INSULT, 0.8, "s"),
    ("moronic", INSULT, 0.6, ""), ("imbecile", INSULT, 0.8, "s"), ("cretin", INSULT, 0.75, "s"),
    ("dumb", INSULT, 0.35, ""), ("stupid", INSULT, 0.4, ""), ("loser", INSULT, 0.55, "s"),
    ("scumbag", INSULT, 0.85, "s"), ("scum", INSULT, 0.7, ""), ("douche", INSULT, 0.75, "s"),
    ("douchebag", INSULT, 0.85, "*"), ("slut", INSULT, 0.9, "s"), ("whore", INSULT, 0.9, "s"),
    ("hoe", INSULT, 0.6, ""), ("hoes", INSULT, 0.6, ""), ("skank", INSULT, 0.85, "s"),
    ("pathetic", INSULT, 0.35, ""), ("worthless", INSULT, 0.45, ""), ("clown", INSULT, 0.3, "s"),
    ("numbnuts", INSULT, 0.75, ""), ("pillock", INSULT, 0.6, "s"), ("tosser", INSULT, 0.7, "s"),
    ("knobhead", INSULT, 0.8, "s"), ("bellend", INSULT, 0.8, "s"),
    # --- slurs: identity attacks, escalated on input and blocked on output
    ("nigger", IDENTITY, 0.99, "*"), ("nigga", IDENTITY, 0.7, "*"), ("niggaz", IDENTITY, 0.7, ""),
    ("faggot", IDENTITY, 0.97, "*"), ("fag", IDENTITY, 0.9, "s"), ("dyke", IDENTITY, 0.8, "s"),
    ("tranny", IDENTITY, 0.85, ""), ("trannies", IDENTITY, 0.85, ""), ("shemale", IDENTITY, 0.8, "s"),
    ("retard", IDENTITY, 0.85, "s"), ("retarded", IDENTITY, 0.7, ""), ("mongoloid", IDENTITY, 0.85, "s"),
    ("spaz", IDENTITY, 0.6, ""), ("spastic", IDENTITY, 0.55, ""), ("spic", IDENTITY, 0.95, "s"),
    ("kike", IDENTITY, 0.95, "s"), ("chink", IDENTITY, 0.95, "s"), ("gook", IDENTITY, 0.95, "s"),
    ("wetback", IDENTITY, 0.95, "s"), ("beaner", IDENTITY, 0.9, "s"), ("raghead", IDENTITY, 0.95, "s"),
    ("towelhead", IDENTITY, 0.95, "s"), ("sandnigger", IDENTITY, 0.99, "s"), ("zipperhead", IDENTITY, 0.95, "s"),
    ("coon", IDENTITY, 0.8, "s"), ("paki", IDENTITY, 0.85, "s"), ("wop", IDENTITY, 0.8, "s"),
    ("dago", IDENTITY, 0.8, "s"), ("honky", IDENTITY, 0.7, "s"), ("homo", IDENTITY, 0.6, "s"),
    ("squaw", IDENTITY, 0.8, "s"), ("heeb", IDENTITY, 0.8, "s"), ("jigaboo", IDENTITY, 0.97, "s"),
)

# Groups that attacks target, for the group-attack patterns (plural forms).
_GROUPS = (
    r"muslims|jews|blacks|gays|lesbians|homosexuals|immigrants|mexicans|arabs|asians|chinese|women|"
    r"christians|hindus|indians|africans|refugees|foreigners|trans(?:gender)? people|latinos|catholics|"
    r"disabled people|old people|migrants|negroes"
)
_BAD = (
    r"animals|vermin|rats|pigs|dogs|apes|monkeys|cockroaches|parasites|scum|trash|garbage|subhuman|"
    r"inferior|disgusting|a disease|a plague|evil|terrorists"
)
_ME = r"(?:i|we)(?:'?ll| will| am going to|'?m going to|'?m gonna| gonna| are going to| are gonna| shall)"
_YOU = r"(?:you|u|ya|your \w+|him|her|them|every ?one|all of you|your family)"

PATTERNS: tuple[tuple[str, str, float], ...] = (
    # threats of violence
    (rf"\b{_ME}\s+(?:fucking\s+)?(?:kill|murder|shoot|stab|hurt|beat|strangle|choke|rape|end|find|get|burn)\s+{_YOU}\b",
     THREAT, 0.9),
    (r"\b(?:kill|shoot|hang|drown)\s+(?:yo)?urself\b|\bkys\b", THREAT, 0.95),
    (r"\b(?:i|we)\s+know\s+where\s+(?:you|u)\s+live\b", THREAT, 0.9),
    (r"\bwatch\s+your\s+back\b", THREAT, 0.65),
    (r"\b(?:hope|wish)\s+(?:you|u)\s+(?:die|get\s+(?:killed|shot|cancer|raped|hit\s+by))", THREAT, 0.9),
    (r"\b(?:you|u)\s+(?:should|deserve\s+to|need\s+to|ought\s+to)\s+(?:die|be\s+(?:shot|killed|hanged))\b", THREAT, 0.9),
    (r"\bdie\s+in\s+a\s+fire\b", THREAT, 0.85),
    (r"\b(?:bomb|blow\s+up|burn\s+down|shoot\s+up)\s+(?:your|the|this|that)\s+"
     r"(?:office|store|building|shop|place|company|headquarters|hq|warehouse)\b", THREAT, 0.95),
    (r"\b(?:you|u)(?:'re|\s+are)?\s+(?:gonna|going\s+to)\s+(?:die|pay\s+for\s+this)\b", THREAT, 0.75),
    # insults aimed at the reader
    (r"\b(?:you|u)(?:'re|\s+are|r|\s+r)\s+(?:(?:such|so|a|an|the|fucking|complete|total|absolute|utter|"
     r"bunch\s+of)\s+)*(?:stupid|dumb|idiots?|morons?|useless|pathetic|worthless|incompetent|clowns?|"
     r"a\s+joke|trash|garbage|imbeciles?|losers?|retarded)\b", INSULT, 0.85),
    (r"\bshut\s+(?:the\s+fuck\s+)?up\b", INSULT, 0.6),
    (r"\bgo\s+to\s+hell\b", INSULT, 0.6),
    (r"\b(?:screw|fuck)\s+(?:you|u|off|yourself)\b", INSULT, 0.85),
    # attacks on a group
    (rf"\b(?:all\s+|those\s+|these\s+|the\s+|fucking\s+|filthy\s+|dirty\s+)*(?:{_GROUPS})\s+(?:are|r)\s+"
     rf"(?:all\s+|just\s+|nothing\s+but\s+)*(?:{_BAD})\b", IDENTITY, 0.9),
    (rf"\b(?:kill|deport|exterminate|gas|hang|ban)\s+(?:all\s+)?(?:the\s+)?(?:{_GROUPS})\b", IDENTITY, 0.9),
    (rf"\b(?:{_GROUPS})\s+should\s+(?:all\s+)?(?:die|be\s+(?:killed|shot|gassed|deported|exterminated))\b",
     IDENTITY, 0.95),
    (r"\bcamel\s+jockey|\bhalf[\s-]breed", IDENTITY, 0.8),
)
