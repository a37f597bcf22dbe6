"""Trains the concept scorer on cached generator clips (every batch holds unseen clips).

Usage: ``python -m models.synthmusic.train_scorer [--steps 600] [--out DIR]``.
"""


import argparse
import json
import time

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


def train(steps: int = 600, batch: int = 64, seed: int = 0, n_train: int = 48000) -> tuple[ConceptScorer, dict]:
    """Trains a scorer; returns it with its metadata (accuracies on test and held-out clips)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # faster than 2 on a shared 2-core machine
    train_ds = data.load("train", n_train)
    model = ConceptScorer()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train_ds), generator=g)
    t0 = time.time()
    bar = tqdm(range(steps), desc="scorer")
    for step in bar:
        idx = perm[(step * batch) % len(perm):][:batch]
        model.train()
        logits = model.logits(augment(train_ds.specs[idx], g))
        loss = sum(F.cross_entropy(logits[c], train_ds.labels[idx, i]) for i, c in enumerate(CONCEPTS))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    test = accuracy(model, data.load("test", 2048))
    held = accuracy(model, data.load("held_out", 1024))
    meta = {"command": f"python -m models.synthmusic.train_scorer --steps {steps} --seed {seed}",
            "seed": seed, "steps": steps, "batch": batch, "data_version": DATA_VERSION,
            "train_clips_seen": min(steps * batch, len(train_ds)), "final_loss": float(loss),
            "test_accuracy": test, "held_out_accuracy": held, "train_seconds": round(time.time() - t0)}
    return model, meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(SCORER_DIR))
    a = p.parse_args()
    model, meta = train(a.steps, seed=a.seed)
    model.save(a.out, meta)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
