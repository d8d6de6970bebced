"""A generated brand blog for the writer's tests: small Markdown posts with YAML front matter.

The "brand" writes short, plain sentences about shipping software with agencies; some posts
have no ``date`` in their front matter (the date is in the file name, Jekyll style), one has
no front matter at all (its title is its first heading), and they range from ~40 to ~250 words.
"""

from __future__ import annotations

import random
from pathlib import Path

TOPICS = ["user research", "agile", "open source", "procurement", "design", "security", "content"]
OPENERS = [
    "At our studio we work in the open.", "We ship small changes every week.", "Our teams start with the people who use the service.",
    "Good software starts with a plain question.", "We learned this lesson the hard way.", "Here is how we approach it.",
]
SENTENCES = [
    "We talk to users before we write any code.", "Small releases make it easy to change course.",
    "Every project has a product owner who can say no.", "We write down what we learn so the next team can use it.",
    "Plain language helps everyone understand the work.", "Our agency partners own the code we write together.",
    "Testing with real people shows what a document cannot.", "We keep the budget visible every week.",
    "A shared backlog keeps the team honest.", "We prefer boring technology that works.",
    "Security is part of the work from the first day.", "Open source lets other teams reuse what we build.",
    "Research does not end when the design is done.", "We measure success by what users can do.",
]
CLOSERS = ["Let us know what you think.", "We will share more soon.", "Thanks for reading.", "Questions? Write to us."]


def post_text(rng: random.Random, paragraphs: int) -> str:
    out = []
    for p in range(paragraphs):
        first = [rng.choice(OPENERS)] if p == 0 else []
        out.append(" ".join(first + rng.sample(SENTENCES, rng.randint(3, 5))))
        if p == 1 and paragraphs > 2:
            out.append("## What we do\n\n" + "\n".join(f"- {s}" for s in rng.sample(SENTENCES, 3)))
    out.append(rng.choice(CLOSERS))
    return "\n\n".join(out)


def write_corpus(folder: Path, n: int = 30, seed: int = 0) -> Path:
    """``n`` posts under ``folder`` (created); returns the folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        day = f"2020-{1 + i // 28:02d}-{1 + i % 28:02d}"
        topic = TOPICS[i % len(TOPICS)]
        title = f"{rng.choice(['How', 'Why', 'When'])} we do {topic} {i}"
        body = post_text(rng, 1 + i % 4)
        name = folder / f"{day}-post-{i}.md"
        if i == 3:  # no front matter: the title comes from the first heading, the date from the name
            name.write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
            continue
        date = "" if i % 5 == 0 else f"date: {day}\n"
        name.write_text(
            f"---\ntitle: \"{title}\"\n{date}tags:\n  - {topic}\n  - how we work\nauthors:\n  - team\n---\n\n"
            f"{{% image \"assets/{i}.png\" \"a picture\" %}}\n\n{body}\n",
            encoding="utf-8",
        )
    (folder / "notes.json.bak").write_text("not an article", encoding="utf-8")  # skipped: unknown type
    return folder
