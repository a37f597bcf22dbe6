"""Trains the concept scorer on cached generator clips (every batch holds unseen clips).

The scorer is the measuring instrument, not a model under test, so it is trained on all
216 combinations: the 48000 train-split clips plus 12000 clips of the held-out
combinations (seeds from :data:`HELD_OUT_TRAIN_START`, disjoint from every evaluation
seed). A first version trained on the train split only reached 0.62-0.73 on held-out
combinations for instrument, tempo and mood: a classifier learns combinations too.

Usage: ``python -m models.synthmusic.train_scorer [--steps 1000] [--out DIR]``.
"""

import argparse
import json
import time
from typing import cast

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import data
from .music import CONCEPTS, DATA_VERSION
from .scorer import SCORER_DIR, ConceptScorer


def accuracy(model: ConceptScorer, ds: data.SpecDataset) -> dict[str, float]:
    """Per-concept accuracy of ``model`` on ``ds``."""
    model.eval()
    pred = model.predict(ds.specs)
    return {c: float((pred[c] == ds.labels[:, i]).float().mean()) for i, c in enumerate(CONCEPTS)}


def augment(spec: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random global level offset and Gaussian noise (robustness to generated spectrograms)."""
    b = spec.shape[0]
    offset = (torch.rand(b, 1, 1, generator=g) - 0.5) * 0.4
    sigma = torch.rand(b, 1, 1, generator=g) * 0.3
    return spec + offset + sigma * torch.randn(spec.shape, generator=g)


HELD_OUT_TRAIN_START = 30_000_000
"""First seed of the held-out-combination clips the scorer trains on."""


def train(
    steps: int = 1000, batch: int = 64, seed: int = 0, n_train: int = 48000, n_held_out: int = 12000
) -> tuple[ConceptScorer, dict]:
    """Trains a scorer; returns it with its metadata (accuracies on test and held-out clips)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # faster than 2 on a shared 2-core machine
    a = data.load("train", n_train)
    b = data.load("held_out", n_held_out, start=HELD_OUT_TRAIN_START)
    train_ds = data.SpecDataset(
        torch.cat([a.specs, b.specs]), torch.cat([a.labels, b.labels]), torch.cat([a.seeds, b.seeds])
    )
    model = ConceptScorer()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train_ds), generator=g)
    t0 = time.time()
    bar = tqdm(range(steps), desc="scorer")
    for step in bar:
        idx = perm[(step * batch) % len(perm) :][:batch]
        model.train()
        logits = model.logits(augment(train_ds.specs[idx], g))
        loss = cast(
            torch.Tensor,  # a sum of tensors: CONCEPTS is not empty
            sum(F.cross_entropy(logits[c], train_ds.labels[idx, i]) for i, c in enumerate(CONCEPTS)),
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    test = accuracy(model, data.load("test", 2048))
    held = accuracy(model, data.load("held_out", 1024))
    meta = {
        "command": f"python -m models.synthmusic.train_scorer --steps {steps} --seed {seed}",
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "data_version": DATA_VERSION,
        "train_clips_seen": min(steps * batch, len(train_ds)),
        "final_loss": float(loss.detach()),
        "train_data": f"train split seeds 0..{n_train - 1} + held-out combinations seeds "
        f"{HELD_OUT_TRAIN_START}..{HELD_OUT_TRAIN_START + n_held_out - 1}",
        "test_clips": "2048 test-split clips from seed 10000000; 1024 held-out clips from seed 10000000",
        "test_accuracy": test,
        "held_out_accuracy": held,
        "train_seconds": round(time.time() - t0),
    }
    return model, meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(SCORER_DIR))
    a = p.parse_args()
    model, meta = train(a.steps, seed=a.seed)
    model.save(a.out, meta)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
