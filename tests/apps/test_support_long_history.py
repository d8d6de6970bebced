"""A history whose conversations are longer than the model's context still trains and answers."""

from __future__ import annotations

import json
from pathlib import Path


def test_conversations_longer_than_the_context_train_and_answer(tmp_path: Path) -> None:
    from appkit.config import load_settings
    from appkit.engine import GREEDY
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.bot import SupportBot
    from apps.support.train import train_support

    words = "parcel order refund address invoice account password delivery courier label".split()
    rows = []
    for c in range(12):  # each conversation ~8 turns of ~50 words: well over the nano context (256)
        messages = []
        for t in range(8):
            text = " ".join(words[(c + t + i) % len(words)] for i in range(50))
            messages.append({"role": "user" if t % 2 == 0 else "assistant", "content": f"{t} {text}"})
        rows.append({"id": f"c{c}", "messages": messages})
    history = tmp_path / "long.jsonl"
    history.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    settings = load_settings(home=tmp_path / "home", device="cpu", database_url=f"sqlite:///{tmp_path / 'a.db'}")
    options = ChatTrainingOptions(preset="nano", max_steps=4, batch_size=4, progress=False, device="cpu")
    trained = train_support(history, name="long", options=options, settings=settings, log=lambda _: None)
    bot = SupportBot.open(model=str(trained.path), settings=settings, policy=None)
    try:
        assert bot.reply("where is my parcel", params=GREEDY).text
    finally:
        bot.close()
