"""ChatterBot as a support baseline, run by bench/support.py in a virtualenv that has chatterbot.

    /path/to/venv/bin/python bench/support_chatterbot.py JOB.json

JOB.json holds {"pairs": [[customer message, agent reply], ...], "questions": [...]}. Prints one
JSON line: the answers, each answer's latency and the training seconds. Offline, ChatterBot's
default tagger would download a spaCy model, so it runs with ``LowercaseTagger``; its storage is
a SQLite file in a temporary directory.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from chatterbot import ChatBot
    from chatterbot.tagging import LowercaseTagger
    from chatterbot.trainers import ListTrainer

    logging.disable(logging.CRITICAL)
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="chatterbot-") as tmp:
        bot = ChatBot("support", tagger=LowercaseTagger, read_only=True,
                      database_uri=f"sqlite:///{tmp}/db.sqlite3",
                      logic_adapters=[{"import_path": "chatterbot.logic.BestMatch"}])
        trainer = ListTrainer(bot, show_training_progress=False)
        start = time.perf_counter()
        for question, answer in job["pairs"]:
            trainer.train([question, answer])
        train_s = time.perf_counter() - start
        answers, latencies = [], []
        for question in job["questions"]:
            t = time.perf_counter()
            answers.append(str(bot.get_response(question)))
            latencies.append(time.perf_counter() - t)
    print(json.dumps({"answers": answers, "latencies": latencies, "train_s": train_s}))


if __name__ == "__main__":
    main()
