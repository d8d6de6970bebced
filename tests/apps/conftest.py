"""Fixtures of the app tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def bot(appkit_home, support_model_dir):
    """The nano support model, active in a fresh home, opened without a safety policy."""
    from appkit.config import load_settings
    from appkit.store import open_store
    from apps.support.bot import SupportBot

    settings = load_settings()
    with open_store(settings) as store:
        store.register_model("toy", "support", str(support_model_dir), status="active", replace=True)
    b = SupportBot.open(settings=settings, policy=None)
    yield b
    b.close()
