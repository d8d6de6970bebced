"""split_conversations: deterministic, by conversation, non-empty validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appkit.data import Conversation, Turn, split_conversations
from appkit.errors import ConfigError


def convs(n: int) -> list[Conversation]:
    return [Conversation(f"c{i}", [Turn("user", f"q{i}"), Turn("assistant", "a")], f"f.csv:{i + 2}") for i in range(n)]


def ids(items: list[Conversation]) -> list[str]:
    return [c.id for c in items]


def test_disjoint_complete_and_in_input_order():
    data = convs(100)
    train, val = split_conversations(data, val_fraction=0.2)
    assert len(val) == 20 and len(train) == 80
    assert set(ids(train)).isdisjoint(ids(val)) and set(ids(train)) | set(ids(val)) == set(ids(data))
    order = {c.id: i for i, c in enumerate(data)}
    assert [order[i] for i in ids(val)] == sorted(order[i] for i in ids(val))


def test_deterministic_by_seed():
    data = convs(50)
    assert ids(split_conversations(data, seed=1)[1]) == ids(split_conversations(list(data), seed=1)[1])
    assert ids(split_conversations(data, seed=1)[1]) != ids(split_conversations(data, seed=2)[1])


def test_independent_of_hash_randomization():
    code = (
        "from appkit.data import Conversation, Turn, split_conversations\n"
        "cs = [Conversation(f'c{i}', [Turn('user', 'q'), Turn('assistant', 'a')]) for i in range(40)]\n"
        "print(','.join(c.id for c in split_conversations(cs, seed=7)[1]))\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(__file__).resolve().parents[2],  # the repo root, so appkit imports without an install
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1


def test_adding_conversations_keeps_most_of_the_split():
    small, big = convs(200), convs(220)
    val_small = set(ids(split_conversations(small, val_fraction=0.1)[1]))
    val_big = set(ids(split_conversations(big, val_fraction=0.1)[1]))
    assert len(val_small & val_big) >= 15  # stable by id, not reshuffled


@pytest.mark.parametrize("n,expected_val", [(0, 0), (1, 0), (2, 1), (3, 1), (9, 1), (25, 2)])
def test_small_inputs(n, expected_val):
    train, val = split_conversations(convs(n), val_fraction=0.1)
    assert len(val) == expected_val and len(train) == n - expected_val


def test_min_val_and_zero_fraction():
    assert len(split_conversations(convs(10), val_fraction=0.0, min_val=0)[1]) == 0
    assert len(split_conversations(convs(10), val_fraction=0.0)[1]) == 1
    assert len(split_conversations(convs(10), val_fraction=0.1, min_val=4)[1]) == 4
    assert len(split_conversations(convs(3), val_fraction=0.5, min_val=10)[1]) == 2  # train keeps one


def test_duplicate_ids_still_split_cleanly():
    data = convs(10) + convs(10)
    train, val = split_conversations(data, val_fraction=0.5)
    assert len(train) + len(val) == 20 and not any(t is v for t in train for v in val)


@pytest.mark.parametrize("kw", [{"val_fraction": 1.0}, {"val_fraction": -0.1}, {"min_val": -1}])
def test_bad_options(kw):
    with pytest.raises(ConfigError):
        split_conversations(convs(5), **kw)
