from __future__ import annotations

import random

from appkit.train.packing import IGNORE, Example, PackedDataset, pack


def _examples(n: int = 200, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(5, 120)
        ids = [rng.randint(5, 99) for _ in range(length)]
        labels = [IGNORE] * (length // 2) + ids[length // 2 :]
        out.append(Example(ids, labels))
    return out


def test_every_example_lands_in_exactly_one_row_within_the_row_length():
    examples = _examples()
    rows = pack(examples, 256)
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(len(examples)))
    assert all(sum(len(examples[i]) for i in row) <= 256 for row in rows)


def test_packing_wastes_little_on_padding():
    data = PackedDataset(_examples(), 256, pad_id=0)
    assert data.padding_fraction < 0.05


def test_batches_restart_positions_per_conversation_and_keep_labels():
    examples = _examples(40)
    data = PackedDataset(examples, 256, pad_id=0)
    batch = next(data.epoch(0, 2, seed=0))
    pos = batch.position_ids[0].tolist()
    starts = [t for t in range(1, len(pos)) if pos[t] == 0]
    assert starts, "a packed row holds several conversations, each starting at position 0"
    assert batch.n_target_tokens == int((batch.labels != IGNORE).sum())
    # padding is never a target
    pad_positions = batch.input_ids == 0
    assert bool((batch.labels[pad_positions] == IGNORE).all())


def test_epoch_order_is_reproducible_and_changes_between_epochs():
    data = PackedDataset(_examples(), 256, pad_id=0)
    first = [b.input_ids.sum().item() for b in data.epoch(0, 4, seed=1)]
    again = [b.input_ids.sum().item() for b in data.epoch(0, 4, seed=1)]
    second = [b.input_ids.sum().item() for b in data.epoch(1, 4, seed=1)]
    assert first == again
    assert first != second
    assert len(first) == data.batches_per_epoch(4)


def test_distributed_ranks_split_each_batch_without_overlap():
    data = PackedDataset(_examples(), 256, pad_id=0)
    r0 = list(data.epoch(0, 2, seed=0, rank=0, world=2))
    r1 = list(data.epoch(0, 2, seed=0, rank=1, world=2))
    assert len(r0) == len(r1) == data.batches_per_epoch(2, world=2)
    tokens = sum(b.n_tokens for b in r0 + r1)
    assert tokens == data.n_tokens


def test_a_packed_conversation_sees_only_itself():
    """The logits of a conversation in a packed row equal its logits alone (no leak from its row-mates)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    first = Example(list(range(5, 17)), list(range(5, 17)))
    second = Example(list(range(40, 50)), list(range(40, 50)))  # shorter: packed after the first
    data = PackedDataset([first, second], 32, pad_id=0)
    assert len(data.rows) == 1, "both conversations share one row"
    batch = next(data.epoch(0, 1, seed=0, shuffle=False))
    start = batch.input_ids[0].tolist().index(40)
    assert start > 0
    with torch.no_grad():
        packed = model(**batch.inputs("cpu")).logits[0, start:start + len(second)]
        alone = model(input_ids=torch.tensor([second.ids])).logits[0]
    assert torch.allclose(packed, alone, atol=1e-4)


def test_every_batch_has_the_same_shape_and_filler_rows_learn_nothing():
    # A compiled model recompiles for every new shape: the epoch's short last batch is filled.
    examples = _examples(50)
    data = PackedDataset(examples, 256, pad_id=0)
    assert len(data.rows) % 4, "the test needs a short last batch"
    batches = list(data.epoch(0, 4, seed=0))
    assert {tuple(b.input_ids.shape) for b in batches} == {(4, 256)}
    assert sum(b.n_tokens for b in batches) == data.n_tokens
    last = batches[-1]
    filler = len(data.rows) % 4
    assert bool((last.labels[filler:] == IGNORE).all()) and bool((last.input_ids[filler:] == 0).all())
    assert last.n_target_tokens == int((last.labels != IGNORE).sum()) > 0
