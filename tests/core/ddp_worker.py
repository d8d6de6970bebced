"""Run under torchrun by test_distributed.py: train a nano model on 2 CPU processes (gloo)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from appkit.data import read_history, split_conversations
from appkit.model.build import build_model
from appkit.model.presets import get_preset
from appkit.tokenizer import train_tokenizer
from appkit.train.distributed import DistContext
from appkit.train.loop import TrainConfig, Trainer
from appkit.train.packing import PackedDataset, encode_examples


def main(history: str, run_dir: str) -> None:
    torch.set_num_threads(1)
    train, val = split_conversations(read_history(history), val_fraction=0.2, seed=0)
    tok = train_tokenizer([t.text for c in train for t in c.turns], vocab_size=512)  # same on every rank
    model = build_model(get_preset("nano"), tok, seed=0)
    pad = tok.pad_token_id
    trainer = Trainer(model, PackedDataset(encode_examples(tok, train, 256), 256, pad),
                      PackedDataset(encode_examples(tok, val, 256), 256, pad),
                      TrainConfig(batch_size=2, max_steps=12, eval_every=6, progress=False, log_every=1),
                      Path(run_dir))
    result = trainer.run()
    weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    ctx = DistContext.from_env()
    print("RESULT " + json.dumps({"rank": ctx.rank, "world": ctx.world, "final_loss": result.final_loss,
                                  "val": result.best_val_loss, "weights": weights,
                                  "writes_metrics": trainer.metrics is not None}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
